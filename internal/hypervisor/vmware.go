package hypervisor

import "fmt"

// VMware is libvirt's VMware Workstation driver (vmwarews:///session,
// vmwarews+ssh://user@host/session), which drives vmrun and keeps each
// domain as a .vmx file. Its stemcells are vSphere's: the env file on a
// CD-ROM, disks on the LSI Logic SCSI controller with the SCSI target id
// as the hint (the vSphere agent's "scsi" resolution), vmxnet3 NICs, EFI.
// libvirt maps target sdN to scsi0:unit with unit 7 skipped (the
// controller's own id), and the unit is the guest's SCSI target id.
// Static MACs must lie in 00:50:56:00:00:00-00:50:56:3f:ff:ff, the range
// VMware reserves for them.
//
// What the driver cannot do, from its driver table
// (src/vmware/vmware_driver.c): it has no device attach or detach, no
// metadata API and no autostart; the .vmx it writes keeps the description
// (as annotation) but not <metadata>, so the ownership marker every CPI
// call checks cannot be stored; and it has no storage driver of its own.
//
// vmwareplayer:///session would be the same profile with the Player's
// vmrun (-T player); vmwarefusion:///session the same on macOS. esx://
// is a different driver altogether: libvirt's client library talks to
// the ESX host's SOAP API itself, with no libvirtd to reach, so this
// CPI's RPC client (go-libvirt) cannot speak to it.
var VMware = Profile{
	Driver:                 "vmwarews",
	StemcellFormats:        []string{"vsphere-ovf", "general-ovf"},
	RootTarget:             "sda",
	EphemeralTarget:        "sdb",
	ConfigDriveTarget:      "hdc",
	PersistentTargetPrefix: "sd",
	FirstPersistentTarget:  2,
	MACPrefix:              "00:50:56",
	MACFourthByteMax:       0x3f,
	Delivery:               DeliveryCDROMEnv,
	DiskID:                 func(string) string { return "" },
	EphemeralID:            func(string) string { return "" },
	Root:                   RootDisk,
	DomainType:             "vmware",
	Devices:                Devices{DiskBus: "scsi", DiscBus: "ide", DiskDriver: "-", NoSerials: true, NICModel: "vmxnet3", Firmware: "efi"},
	TargetHint:             scsiHint(vmwareSCSIUnit),
	URIPath:                "/session",
	// scsi0's 15 units; libvirt puts sdp and later on scsi1, where the
	// same target ids come again.
	TargetLimit: 15,
	Refused: map[Operation]string{
		OpImportStemcell: "it has no storage driver: VMDKs are files next to the .vmx on the Workstation host, outside libvirt's storage API",
		OpCreateDisk:     "it has no storage driver",
		OpCreateVM:       "the .vmx it writes keeps no <metadata>, so the CPI cannot mark the VM as its own (and it has no autostart)",
		OpAttachDisk:     "it has no device attach (no hot-plug, no change of the definition)",
		OpDetachDisk:     "it has no device detach",
		OpSetVMMetadata:  "it has no metadata API (domainSetMetadata)",
	},
}

// vmwareSCSIUnit is the unit of disk number index on its controller, as
// libvirt's VMX writer numbers them (virVMXSCSIDiskNameToControllerAndUnit:
// 15 units per controller, unit 7 is the controller's own).
func vmwareSCSIUnit(index int) int {
	unit := index % 15
	if unit >= 7 {
		unit++
	}
	return unit
}

// otherDrivers says what the drivers next to the ones with a profile
// would need.
var otherDrivers = map[string]string{
	"vmwareplayer": "VMware Player is the vmwarews profile with the Player's vmrun; it has no profile of its own yet",
	"vmwarefusion": "VMware Fusion runs on macOS only; it would be the vmwarews profile",
	"esx":          "libvirt's esx driver runs in the client library and talks to the ESX host's SOAP API, with no libvirtd to reach; this CPI speaks libvirt's RPC protocol only (use a vSphere CPI for ESX)",
}

// unsupportedDriverHint adds what a known driver without a profile needs.
func unsupportedDriverHint(driver string) string {
	if why, ok := otherDrivers[driver]; ok {
		return " (" + why + ")"
	}
	return ""
}

// checkURIPath refuses a URI whose path the driver does not serve:
// vbox and vmwarews are per-user drivers (/session), libxl is /system.
func (p Profile) checkURIPath(uri string) error {
	if p.URIPath == "" {
		return nil
	}
	if path := uriPath(uri); path != p.URIPath {
		return fmt.Errorf("key 'uri': libvirt's %s driver serves %s URIs only (%s), not '%s'", p.Driver, p.URIPath, p.URI("", ""), uri)
	}
	return nil
}
