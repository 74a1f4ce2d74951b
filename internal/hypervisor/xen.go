package hypervisor

// Xen is libvirt's libxl driver (xen:///system, xen+ssh://root@host/system,
// xen+tls://host/system): fully virtualized (HVM) guests from OpenStack
// stemcells, whose agent reads the config-2 drive as on QEMU. The disks
// are Xen PV block devices (blkfront: xvda, xvdb, ...), which carry no
// serial, so the hint is the device path: the agent's "virtio" resolution
// tries the by-id serial, finds none and falls back to the path (it knows
// the xvd/vd/sd spellings). The config drive is an emulated IDE CD-ROM
// (hdc), the only CD-ROM an HVM guest's firmware and kernel find without
// PV drivers; the agent finds it by its label. MACs are in Xen's
// 00:16:3e range; NICs carry no model, which gives the PV netfront NIC.
//
// libxl hot-plugs disks (attach and detach, live and in the definition),
// keeps <metadata> and has the metadata API and autostart, and volumes
// come from the daemon's own storage driver, so nothing is refused.
var Xen = Profile{
	Driver:                 "xen",
	StemcellFormats:        []string{"openstack-qcow2", "openstack-raw"},
	RootTarget:             "xvda",
	EphemeralTarget:        "xvdb",
	ConfigDriveTarget:      "hdc",
	PersistentTargetPrefix: "xvd",
	FirstPersistentTarget:  2,
	MACPrefix:              "00:16:3e",
	Delivery:               DeliveryConfigDrive,
	DiskID:                 func(string) string { return "" },
	EphemeralID:            func(string) string { return "" },
	Root:                   RootDisk,
	DomainType:             "xen",
	LiveDiskAttach:         true,
	Devices:                Devices{DiskBus: "xen", DiscBus: "ide", DiskDriver: "qemu", NoSerials: true, NICModel: "-"},
	TargetHint:             pathHint,
	URIPath:                "/system",
}
