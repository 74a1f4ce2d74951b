package xmldef

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/faults"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// Plan is everything the domain XML is built from: resolved paths
// and names, no libvirt calls. Keeping it a plain value makes the XML
// testable without a daemon.
type Plan struct {
	Profile       hypervisor.Profile
	DomainType    string // "kvm" or "qemu"
	Name          string // the VM CID
	Machine       string // "q35" or "pc"
	HotplugSlots  int
	MemoryMiB     int
	CPUs          int
	RootPath      string // qcow2 overlay on the stemcell
	EphemeralPath string
	ConfigPath    string // raw ISO9660 image: a config-2 drive or an env disc
	// Firmware is "efi" (UEFI, chosen by libvirt's firmware
	// auto-selection) or "bios"/empty (SeaBIOS, QEMU's default).
	Firmware   string
	ConsoleLog string
	NICs       []vm.NIC
	// PersistentDisks are ready <disk> elements (see PersistentDiskDevice).
	PersistentDisks []libvirtxml.DomainDisk
	Marker          Marker
	// A container's root directory on the libvirt host, its persistent
	// disks (see DiskFilesystem) and the static addresses libvirt sets on
	// its NICs (by MAC); RootFilesystem profiles only.
	RootDir     string
	Filesystems []libvirtxml.DomainFilesystem
	Addresses   map[string]NICAddress
}

// NewPlan takes from spec what the domain needs; volume paths are
// filled in as the volumes are made. Only the agent ID and the stemcell
// CID go into metadata: the config drive (agent settings, mbus
// credentials) never does.
func NewPlan(spec vm.Spec, profile hypervisor.Profile, domainType, machine string, hotplugSlots int, consoleLog string) Plan {
	return Plan{
		Profile:      profile,
		DomainType:   domainType,
		Name:         spec.CID,
		Machine:      machine,
		HotplugSlots: hotplugSlots,
		MemoryMiB:    spec.Props.MemoryMiB,
		CPUs:         spec.Props.CPUs,
		ConsoleLog:   consoleLog,
		NICs:         spec.NICs,
		Marker:       Marker{AgentID: spec.AgentID, StemcellCID: spec.StemcellCID},
	}
}

// WithBoot records how the VM boots and reads its settings (from its
// stemcell and cloud_properties) in the plan and in the domain's marker.
// The profile becomes the one for that delivery (on QEMU, a vSphere
// stemcell's VM has SCSI disks), and the marker says which, for every
// later call on the VM.
func (p *Plan) WithBoot(firmware string, delivery hypervisor.Delivery) {
	p.Firmware = firmware
	p.Profile = p.Profile.ForDelivery(delivery)
	p.Marker.Firmware = firmware
	p.Marker.Delivery = string(delivery)
	if onSCSIController(p.Profile) {
		p.Marker.DiskBus = hypervisor.DiskBusSCSI
	}
}

// Role suffixes of the volumes a VM owns. DeleteVM removes exactly these.
const (
	rootSuffix        = "-root"
	ephemeralSuffix   = "-ephemeral"
	configDriveSuffix = "-config.iso"
)

func RootVolumeName(cid string) string        { return cid + rootSuffix }
func EphemeralVolumeName(cid string) string   { return cid + ephemeralSuffix }
func ConfigDriveVolumeName(cid string) string { return cid + configDriveSuffix }

// OwnedVolumeNames are the volumes that live and die with the VM.
func OwnedVolumeNames(cid string) []string {
	return []string{ConfigDriveVolumeName(cid), EphemeralVolumeName(cid), RootVolumeName(cid)}
}

// defaultTitle is what `virsh list --title` shows before set_vm_metadata.
func defaultTitle(cid string) string { return "bosh vm " + cid }

// decorators add to a domain what only its hypervisor has, by profile
// driver: a hypervisor is one profile and one decorate function.
var decorators = map[string]func(*libvirtxml.Domain, Plan){
	hypervisor.QEMU.Driver: decorateQEMU,
	hypervisor.LXC.Driver:  decorateLXC,
	// vbox, xen and vmwarews: hypervisors.go
	hypervisor.VBox.Driver:   decorateVBox,
	hypervisor.Xen.Driver:    decorateXen,
	hypervisor.VMware.Driver: decorateVMware,
}

// Build turns a plan into the domain definition: what every hypervisor's
// domain has, then what the plan's hypervisor adds.
func Build(p Plan) (libvirtxml.Domain, error) {
	decorate, ok := decorators[p.Profile.Driver]
	if !ok {
		return libvirtxml.Domain{}, fmt.Errorf("domain '%s': no domain definition for hypervisor '%s'", p.Name, p.Profile.Driver)
	}
	marker, err := p.Marker.Marshal()
	if err != nil {
		return libvirtxml.Domain{}, fmt.Errorf("domain '%s': %w", p.Name, err)
	}
	dom := libvirtxml.Domain{
		Type:       p.DomainType,
		Name:       p.Name,
		Title:      defaultTitle(p.Name),
		Metadata:   &libvirtxml.DomainMetadata{XML: marker},
		Memory:     &libvirtxml.DomainMemory{Value: uint(p.MemoryMiB), Unit: "MiB"},
		VCPU:       &libvirtxml.DomainVCPU{Value: uint(p.CPUs)},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks:      disksFor(p),
			Interfaces: interfacesFor(p.NICs),
			Serials:    []libvirtxml.DomainSerial{ConsoleSerial(p.ConsoleLog)},
			Consoles:   []libvirtxml.DomainConsole{consoleOnSerial(p.ConsoleLog)},
		},
	}
	if onSCSIController(p.Profile) {
		if err := hardDisksOnSCSI(dom.Devices.Disks); err != nil {
			return libvirtxml.Domain{}, fmt.Errorf("domain '%s': %w", p.Name, err)
		}
	}
	decorate(&dom, p)
	return dom, nil
}

// disksFor: root (the only boot device), ephemeral, config drive, then the
// persistent disks planned at creation.
func disksFor(p Plan) []libvirtxml.DomainDisk {
	root := FileDiskDevice(p.RootPath, string(disk.FormatQcow2), disk.Serial(RootVolumeName(p.Name)), p.Profile.RootTarget)
	// A per-device boot order pins the boot disk: with <os><boot dev='hd'/>
	// the firmware would pick "the first hard disk", which persistent disks
	// attached at creation could become.
	root.Boot = &libvirtxml.DomainDeviceBoot{Order: 1}
	ephemeral := FileDiskDevice(p.EphemeralPath, string(disk.FormatQcow2), p.Profile.EphemeralID(p.Name), p.Profile.EphemeralTarget)
	disks := []libvirtxml.DomainDisk{root, ephemeral, ConfigDriveDevice(p.ConfigPath, p.Profile.ConfigDriveTarget)}
	if faults.Active(faults.OmitConfigDrive) {
		disks = disks[:2]
	}
	return append(disks, p.PersistentDisks...)
}

// ConfigDriveDevice is a SATA CD-ROM: the agent mounts /dev/sr0, which a
// virtio device never becomes.
func ConfigDriveDevice(path, target string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device:   "cdrom",
		Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: string(disk.FormatRaw)},
		Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target:   &libvirtxml.DomainDiskTarget{Dev: target, Bus: "sata"},
		ReadOnly: &libvirtxml.DomainDiskReadOnly{},
	}
}

// ValidateNICs refuses what libvirt would reject with only a schema error:
// every NIC needs a network name and a unicast MAC.
func ValidateNICs(nics []vm.NIC) error {
	for _, nic := range nics {
		if nic.LibvirtNetwork == "" && !nic.UserMode {
			return fmt.Errorf("NIC for BOSH network '%s' names no libvirt network", nic.BOSHNetwork)
		}
		mac, err := net.ParseMAC(nic.MAC)
		if err != nil || len(mac) != 6 {
			return fmt.Errorf("NIC for BOSH network '%s': '%s' is not a MAC address", nic.BOSHNetwork, nic.MAC)
		}
		if mac[0]&1 == 1 {
			return fmt.Errorf("NIC for BOSH network '%s': '%s' is a multicast MAC address; a NIC needs a unicast one", nic.BOSHNetwork, nic.MAC)
		}
	}
	return nil
}

// interfacesFor keeps each NIC's MAC exactly: the agent finds its network
// settings by MAC.
func interfacesFor(nics []vm.NIC) []libvirtxml.DomainInterface {
	ifaces := make([]libvirtxml.DomainInterface, 0, len(nics))
	for _, nic := range nics {
		source := &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: nic.LibvirtNetwork}}
		if nic.UserMode {
			source = &libvirtxml.DomainInterfaceSource{User: &libvirtxml.DomainInterfaceSourceUser{}}
		}
		ifaces = append(ifaces, libvirtxml.DomainInterface{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: strings.ToLower(nic.MAC)},
			Source: source,
		})
	}
	return ifaces
}

// ConsoleSerial writes the guest's serial console (kernel and agent
// boot output) to a file the operator can read after a failed boot.
func ConsoleSerial(logPath string) libvirtxml.DomainSerial {
	port := uint(0)
	return libvirtxml.DomainSerial{
		Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: logPath, Append: "on"}},
		Target: &libvirtxml.DomainSerialTarget{Port: &port},
	}
}

func consoleOnSerial(logPath string) libvirtxml.DomainConsole {
	port := uint(0)
	return libvirtxml.DomainConsole{
		Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: logPath, Append: "on"}},
		Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
	}
}

// TitleFor is what `virsh list --title` shows for a VM with metadata:
// deployment/job/index when the director sent them, else the name key,
// else the default.
func TitleFor(cid string, meta vm.Metadata) string {
	var parts []string
	for _, key := range []string{"deployment", "job", "index"} {
		if v := meta[key]; v != "" {
			parts = append(parts, v)
		}
	}
	if len(parts) > 0 {
		return oneLine(strings.Join(parts, "/"))
	}
	if name := meta["name"]; name != "" {
		return oneLine(name)
	}
	return defaultTitle(cid)
}

// oneLine: libvirt refuses a title with a newline.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// DescriptionFor lists all metadata as sorted "k=v" lines.
func DescriptionFor(meta vm.Metadata) string {
	lines := make([]string, 0, len(meta))
	for _, key := range sortedKeys(meta) {
		lines = append(lines, oneLine(key)+"="+oneLine(meta[key]))
	}
	return strings.Join(lines, "\n")
}

func sortedKeys(meta vm.Metadata) []string {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// WithTags returns the marker with its tags replaced by meta.
func (m Marker) WithTags(meta vm.Metadata) Marker {
	m.Tags = nil
	for _, key := range sortedKeys(meta) {
		m.Tags = append(m.Tags, MarkerTag{Key: key, Value: meta[key]})
	}
	return m
}
