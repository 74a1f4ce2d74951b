// Package hypervisor holds what differs between the hypervisors libvirt
// drives for BOSH: device names, the disk hint rule, the MAC range, how
// agent settings reach the guest and which stemcells run. A Profile is
// plain data, so the CPI layer never learns these facts and a new driver
// (lxc, vbox, xen) is one more Profile value and one XML decorate function
// in the libvirt runtime, not a copy of it.
package hypervisor

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// Delivery is how a hypervisor's stemcells read their agent settings.
type Delivery string

// DeliveryConfigDrive is an ISO9660 config drive labelled config-2 on a
// CD-ROM (OpenStack stemcells).
const DeliveryConfigDrive Delivery = "config-2"

// DeliveryRootfsFile is a JSON file written into the container's root
// filesystem before it starts (warden stemcells).
const DeliveryRootfsFile Delivery = "rootfs-file"

// DeliveryCDROMEnv is an ISO9660 disc holding one file, env, with the
// settings JSON, on a CD-ROM the agent mounts from /dev/sr0 (vSphere and
// VirtualBox stemcells: bosh-agent's CDROM settings source).
const DeliveryCDROMEnv Delivery = "cdrom-env"

// RootKind is what a VM's root is made of.
type RootKind string

const (
	// RootDisk is a disk image: a copy-on-write overlay on the stemcell's.
	RootDisk RootKind = "disk"
	// RootFilesystem is a directory tree on the libvirt host: the
	// stemcell's unpacked root filesystem under a per-VM writable layer.
	RootFilesystem RootKind = "filesystem"
)

// Profile is one libvirt driver's way of running a BOSH VM.
type Profile struct {
	// Driver is the URI's driver part that selects this profile.
	Driver string
	// StemcellFormats are the stemcell formats info offers.
	StemcellFormats []string
	// RootTarget, EphemeralTarget and ConfigDriveTarget are the guest
	// device names of the VM's own disks.
	RootTarget, EphemeralTarget, ConfigDriveTarget string
	// PersistentTargetPrefix and FirstPersistentTarget name persistent
	// disks: prefix plus letters, counted from the letter after the VM's
	// own disks.
	PersistentTargetPrefix string
	FirstPersistentTarget  int
	// MACPrefix is the first three bytes of every NIC's MAC.
	MACPrefix string
	// Delivery is how the agent settings reach the guest.
	Delivery Delivery
	// DiskID is the hint id of a persistent disk: what the guest's udev
	// names it by.
	DiskID func(diskCID string) string
	// EphemeralID is the hint id of a VM's ephemeral disk.
	EphemeralID func(vmCID string) string
	// Root is what the VM's root is; DomainType, when set, is the
	// libvirt domain type (else decided from the host's capabilities).
	Root       RootKind
	DomainType string
	// SettingsPath is where DeliveryRootfsFile puts the settings.
	SettingsPath string
	// DiskHintDir, when set, makes disk hints paths: a persistent disk is
	// the directory DiskHintDir/<disk-cid> in the guest (the warden rule),
	// and the ephemeral disk is the directory EphemeralDir.
	DiskHintDir, EphemeralDir string
	// LiveDiskAttach tells whether a disk reaches a running guest without
	// a restart.
	LiveDiskAttach bool
	// Devices, TargetHint, Refused, URIPath and MACFourthByteMax: see
	// vbox.go, xen.go and vmware.go, the profiles that set them.
	Devices Devices
	// TargetHint, when set, is the hint of a disk by its device target
	// (the SCSI or device path rule of the driver's stemcells).
	TargetHint func(target string) disk.Hint
	// Refused names the CPI methods the driver cannot do, with why.
	Refused map[Operation]string
	// URIPath is the one path the driver's URIs take ("/session" or
	// "/system"); "" takes any.
	URIPath string
	// MACFourthByteMax bounds the fourth byte of a generated MAC (VMware
	// admits static MACs up to 00:50:56:3f:ff:ff only); 0 is no bound.
	MACFourthByteMax byte
	// TargetLimit, when set, is how many disks the disk bus holds (one
	// SCSI controller: the hint's target id would be ambiguous on two).
	TargetLimit int
}

// QEMU is QEMU/KVM: virtio-blk disks whose serials are the hint ids, a
// SATA CD-ROM config drive, and MACs in the range libvirt picks from.
// vSphere stemcells run too: their VMs get the env disc on the same
// CD-ROM instead (the stemcell's record decides, not the profile).
var QEMU = Profile{
	Driver:                 "qemu",
	StemcellFormats:        []string{"openstack-qcow2", "openstack-raw", "vsphere-ovf", "general-ovf"},
	RootTarget:             "vda",
	EphemeralTarget:        "vdb",
	ConfigDriveTarget:      "sda",
	PersistentTargetPrefix: "vd",
	FirstPersistentTarget:  2,
	MACPrefix:              "52:54:00",
	Delivery:               DeliveryConfigDrive,
	DiskID:                 disk.DiskSerial,
	EphemeralID:            EphemeralDiskSerial,
	Root:                   RootDisk,
	LiveDiskAttach:         true,
}

// QEMUvSphere is QEMU running a vSphere-format stemcell: the disks the
// vSphere agent looks for (device path resolution "scsi"). The root,
// ephemeral and persistent disks sit on one virtio-scsi controller, disk
// number n (sda 0, sdc 2) at SCSI target n, LUN 0, and each hint's
// volume_id is that target: the agent takes the SCSI host of the root
// disk (the sd device at <host>:0:0:0), rescans it and finds the disk at
// <host>:0:<volume_id>:0. The env disc stays a SATA CD-ROM (sr0); its
// target name only has to differ from the disks'. Serials are kept, so
// /dev/disk/by-id names the disks too.
var QEMUvSphere = func() Profile {
	p := QEMU
	p.RootTarget, p.EphemeralTarget, p.ConfigDriveTarget = "sda", "sdb", "hda"
	p.PersistentTargetPrefix = "sd"
	p.Delivery = DeliveryCDROMEnv
	p.Devices = Devices{DiskBus: DiskBusSCSI}
	p.TargetHint = scsiHint(func(index int) int { return index })
	// QEMU's virtio-scsi addresses 256 targets on its bus.
	p.TargetLimit = 256
	return p
}()

// DiskBusSCSI is the Devices.DiskBus of profiles whose hard disks sit on
// a SCSI controller.
const DiskBusSCSI = "scsi"

// ForDelivery is the profile a VM of this hypervisor runs with when its
// stemcell reads its settings by delivery: on QEMU, a vSphere stemcell's
// VM (the env CD-ROM) gets the SCSI disks its agent resolves; any other
// profile is the same with that delivery.
func (p Profile) ForDelivery(delivery Delivery) Profile {
	if p.Driver == QEMU.Driver && delivery == DeliveryCDROMEnv {
		return QEMUvSphere
	}
	p.Delivery = delivery
	return p
}

// LXC is libvirt's lxc driver: a container whose root is a directory on
// the libvirt host, the warden contract for settings and disks (the file
// warden stemcells' agent reads; a persistent disk is an ext4 image that
// libvirt loop-mounts at /warden-cpi-dev/<disk-cid>, the path the agent
// bind-mounts). The lxc driver cannot hot-plug a filesystem ("device type
// 'filesystem' cannot be attached"), so a disk reaches a running
// container by restarting it; its root filesystem's state is kept.
var LXC = Profile{
	Driver:          "lxc",
	StemcellFormats: []string{"warden-tar", "general-tar"},
	MACPrefix:       "00:16:3e",
	Delivery:        DeliveryRootfsFile,
	DiskID:          func(diskCID string) string { return diskCID },
	EphemeralID:     func(string) string { return "" },
	Root:            RootFilesystem,
	DomainType:      "lxc",
	SettingsPath:    "/var/vcap/bosh/warden-cpi-agent-env.json",
	DiskHintDir:     "/warden-cpi-dev",
	EphemeralDir:    "/var/vcap/data",
}

// EphemeralDiskSerial is the virtio serial of a VM's ephemeral disk: the
// agent's hint in the settings and the domain's device carry the same.
func EphemeralDiskSerial(vmCID string) string { return disk.Serial(vmCID + "-ephemeral") }

// profiles are the hypervisors this CPI has, by URI driver.
var profiles = map[string]Profile{QEMU.Driver: QEMU, LXC.Driver: LXC, VBox.Driver: VBox, Xen.Driver: Xen, VMware.Driver: VMware}

// ForURI is the profile of a libvirt URI's driver (qemu:///system,
// qemu+ssh://host/system, ...). A driver without a profile is refused
// naming the ones there are.
func ForURI(uri string) (Profile, error) {
	driver, err := Driver(uri)
	if err != nil {
		return Profile{}, err
	}
	p, ok := profiles[driver]
	if !ok {
		return Profile{}, fmt.Errorf("key 'uri': libvirt driver '%s' of '%s' is not supported by this CPI yet; supported drivers: %s%s", driver, uri, strings.Join(Drivers(), ", "), unsupportedDriverHint(driver))
	}
	return p, p.checkURIPath(uri)
}

// Driver is the driver part of a libvirt URI: "qemu" of qemu+ssh://h/system.
func Driver(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("key 'uri': '%s' is not a libvirt URI such as qemu:///system", uri)
	}
	return strings.SplitN(u.Scheme, "+", 2)[0], nil
}

// Drivers lists the drivers that have a profile, sorted.
func Drivers() []string {
	names := make([]string, 0, len(profiles))
	for name := range profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// SystemDisk is the settings' disks.system: the root disk's device path
// (none for a container).
func (p Profile) SystemDisk() string {
	if p.RootTarget == "" {
		return ""
	}
	return "/dev/" + p.RootTarget
}

// EphemeralHint is the agent's hint for the VM's ephemeral disk.
func (p Profile) EphemeralHint(vmCID string) disk.Hint {
	if p.DiskHintDir != "" {
		return disk.Hint{Path: p.EphemeralDir}
	}
	if p.TargetHint != nil {
		return p.TargetHint(p.EphemeralTarget)
	}
	return disk.Hint{ID: p.EphemeralID(vmCID), Path: "/dev/" + p.EphemeralTarget}
}

// PersistentHint is the agent's hint for a persistent disk at target: the
// id the guest names it by (the agent keeps it, but looks the disk up by
// its CID, which is that by-id name) and the device path as fallback.
func (p Profile) PersistentHint(diskCID, target string) disk.Hint {
	if p.DiskHintDir != "" {
		return disk.Hint{ID: diskCID, Path: p.DiskHintPath(diskCID)}
	}
	if p.TargetHint != nil {
		return p.TargetHint(target)
	}
	return disk.Hint{ID: p.DiskID(diskCID), Path: "/dev/" + target}
}

// DiskHintPath is where a persistent disk appears in a container guest.
func (p Profile) DiskHintPath(diskCID string) string { return p.DiskHintDir + "/" + diskCID }

// letters in a target suffix: vdz is followed by vdaa.
const letters = 26

// PersistentTarget is the i-th persistent disk target: for QEMU vdc, vdd,
// ..., vdz, vdaa, ...
func (p Profile) PersistentTarget(i int) (string, error) {
	if p.PersistentTargetPrefix == "" {
		return "", fmt.Errorf("hypervisor '%s' has no device targets for persistent disks", p.Driver)
	}
	n := i + p.FirstPersistentTarget
	if p.TargetLimit > 0 && n >= p.TargetLimit {
		return "", fmt.Errorf("no device target for persistent disk number %d: the %s profile's disk controller holds %d disks", i, p.Driver, p.TargetLimit)
	}
	if i < 0 || n >= letters+letters*letters {
		return "", fmt.Errorf("no device target for persistent disk number %d", i)
	}
	if n < letters {
		return p.PersistentTargetPrefix + string(rune('a'+n)), nil
	}
	n -= letters
	return p.PersistentTargetPrefix + string(rune('a'+n/letters)) + string(rune('a'+n%letters)), nil
}

// NewMAC returns a random MAC under the profile's prefix (for QEMU the
// locally administered 52:54:00 range libvirt itself picks from).
func (p Profile) NewMAC() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating a MAC address: %w", err)
	}
	if p.MACFourthByteMax != 0 {
		b[0] %= p.MACFourthByteMax + 1
	}
	return fmt.Sprintf("%s:%02x:%02x:%02x", p.MACPrefix, b[0], b[1], b[2]), nil
}
