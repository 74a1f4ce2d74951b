package vm

import (
	"regexp"

	"github.com/google/uuid"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

var cidPattern = regexp.MustCompile(`^vm-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// NewCID makes a fresh VM CID.
func NewCID() string { return "vm-" + uuid.NewString() }

// ValidCID tells whether cid has the shape of a CID this CPI made. Anything
// else (paths, other domains' names) must never reach a backend.
func ValidCID(cid string) bool { return cidPattern.MatchString(cid) }

// Spec is everything a runtime needs to create one VM.
type Spec struct {
	CID         string
	AgentID     string
	StemcellCID string
	Props       Props
	NICs        []NIC
	// Disks are persistent disks to attach at creation, in target order.
	Disks []AttachedDisk
	// PublicKeys are the SSH keys of the VM's meta-data, in order.
	PublicKeys []string
	// PersistentDisksInSettings: the agent settings name Disks with their
	// hints (stemcell API 1, whose settings follow attach and detach).
	PersistentDisksInSettings bool
}

// NIC is one network interface; the runtime chooses its MAC and writes the
// same into the agent settings, where the agent finds its network by it.
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

// AttachedDisk is a persistent disk attached at creation; the runtime
// fills in its device target.
type AttachedDisk struct {
	DiskCID string
	Target  string
}

// Metadata is what set_vm_metadata passes, flattened to strings.
type Metadata map[string]string
