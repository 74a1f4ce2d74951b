package hypervisor

// VBox is libvirt's VirtualBox driver (vbox:///session, vbox+ssh://host/session;
// it runs inside the user's libvirtd). It follows the VirtualBox CPI, whose
// users run vSphere-format stemcells: the settings are the env file on a
// CD-ROM (the VirtualBox CPI's env ISO), hard disks sit on an LSI Logic
// SCSI controller and the hint is the disk's SCSI target id, MACs are in
// Oracle's 08:00:27 range, NICs are the Intel PRO/1000 MT every stemcell
// kernel drives, and the firmware is EFI (vSphere stemcells boot only
// with EFI since 2024).
//
// libvirt's vbox driver names a SCSI disk's VirtualBox port by its
// target's index (sda port 0, sdc port 2, device 0 each), and that port is
// the SCSI target id the guest sees, so the hint follows from the target.
//
// What the driver cannot do, from its driver table and attach code
// (src/vbox/vbox_common.c): it has no metadata API (domainSetMetadata /
// domainGetMetadata) and keeps no <metadata> of a defined domain, so the
// ownership marker every CPI call checks cannot be stored and create_vm
// is refused; it has no autostart; its device attach and detach handle
// shared folders only (any disk answers "Unsupported device type", and
// only the live flag is taken); its storage driver serves VirtualBox's
// media registry with no volume upload, no pool definition and no resize
// (src/vbox/vbox_storage.c), so a stemcell cannot be streamed into it.
// A NIC on a libvirt network is VirtualBox's host-only adapter of that
// name (vboxnet0, ...).
var VBox = Profile{
	Driver:                 "vbox",
	StemcellFormats:        []string{"vsphere-ovf", "general-ovf"},
	RootTarget:             "sda",
	EphemeralTarget:        "sdb",
	ConfigDriveTarget:      "hdc",
	PersistentTargetPrefix: "sd",
	FirstPersistentTarget:  2,
	MACPrefix:              "08:00:27",
	Delivery:               DeliveryCDROMEnv,
	DiskID:                 func(string) string { return "" },
	EphemeralID:            func(string) string { return "" },
	Root:                   RootDisk,
	DomainType:             "vbox",
	Devices:                Devices{DiskBus: "scsi", DiscBus: "ide", DiskDriver: "-", NoSerials: true, NICModel: "82540EM", Firmware: "efi"},
	TargetHint:             scsiHint(func(index int) int { return index }),
	URIPath:                "/session",
	// VirtualBox's LSI Logic controller has 16 ports.
	TargetLimit: 16,
	Refused: map[Operation]string{
		OpImportStemcell: "its storage driver is VirtualBox's media registry and has no volume upload, so a stemcell image cannot be streamed into it",
		OpCreateVM:       "it keeps no <metadata> and has no metadata API, so the CPI cannot mark the VM as its own (and it has no autostart)",
		OpCreateDisk:     "its storage driver has no volume upload for the disk's ownership record",
		OpAttachDisk:     "its device attach plugs shared folders only; a disk answers 'Unsupported device type'",
		OpDetachDisk:     "its device detach removes shared folders only; a disk answers 'Unsupported device type'",
		OpSetVMMetadata:  "it has no metadata API (domainSetMetadata)",
	},
}
