package vm

import (
	"regexp"

	"github.com/google/uuid"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

// Device targets inside the guest. Persistent disks take the letters after
// the ephemeral disk; the config drive is a SATA CD-ROM so it never competes
// with data disks for a virtio slot.
const (
	RootTarget        = "vda"
	EphemeralTarget   = "vdb"
	ConfigDriveTarget = "sda"
)

var cidPattern = regexp.MustCompile(`^vm-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// EphemeralDiskSerial is the serial of the VM's ephemeral disk: the
// agent's hint in the settings and the domain's device must carry the same.
func EphemeralDiskSerial(vmCID string) string { return disk.Serial(vmCID + "-ephemeral") }

// NewCID makes a fresh VM CID.
func NewCID() string { return "vm-" + uuid.NewString() }

// ValidCID tells whether cid has the shape of a CID this CPI made. Anything
// else (paths, other domains' names) must never reach a backend.
func ValidCID(cid string) bool { return cidPattern.MatchString(cid) }

// Spec is everything a backend needs to create one VM.
type Spec struct {
	CID         string
	AgentID     string
	StemcellCID string
	Props       Props
	NICs        []NIC
	// ConfigDrive is the ISO9660 image (label config-2) with agent settings.
	ConfigDrive []byte
	// Disks are persistent disks to attach at creation, in target order.
	Disks []AttachedDisk
}

// NIC is one network interface; the MAC is chosen by the CPI layer so that
// the agent settings carry the same MAC as the domain.
type NIC struct {
	BOSHNetwork    string
	LibvirtNetwork string
	MAC            string
	IP             string // empty for dynamic networks
	Dynamic        bool
	// UserMode: QEMU user-mode networking instead of LibvirtNetwork.
	UserMode bool
	// Create is the libvirt network to make when LibvirtNetwork is
	// missing; nil when it must exist.
	Create *network.Plan
}

// AttachedDisk is a persistent disk planned at a device target.
type AttachedDisk struct {
	DiskCID string
	Target  string
}

// Metadata is what set_vm_metadata passes, flattened to strings.
type Metadata map[string]string
