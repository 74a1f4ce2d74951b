package xmldef

import (
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/faults"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

// The VirtualBox, Xen and VMware domains: the common domain (disks, NICs,
// serial console, marker) spelled the way the profile's driver takes it
// (buses, disk driver, serials, NIC model, firmware), plus what each
// driver needs of its own. None of them can run on the machines this
// project is tested on: tests check every document against libvirt's
// schema instead.

// decorateVBox: an EFI hvm guest with an LSI Logic SCSI controller for the
// hard disks and the env CD-ROM on IDE, as the VirtualBox CPI lays it out.
func decorateVBox(dom *libvirtxml.Domain, p Plan) {
	decorateHVM(dom, p)
	dom.Devices.Controllers = []libvirtxml.DomainController{scsiController()}
}

// decorateXen: an HVM guest of libxl with PV disks and NICs and an IDE
// config drive (its firmware finds no other CD-ROM).
func decorateXen(dom *libvirtxml.Domain, p Plan) {
	decorateHVM(dom, p)
}

// decorateVMware: an EFI guest whose disks are on scsi0 (LSI Logic),
// vmxnet3 NICs on the VMware network the BOSH network names. libvirt's
// VMX writer knows bridged networks only, so each NIC is a bridge whose
// name is VMware's network name (vmnet0, "VM Network", ...).
func decorateVMware(dom *libvirtxml.Domain, p Plan) {
	decorateHVM(dom, p)
	dom.Devices.Controllers = []libvirtxml.DomainController{scsiController()}
	for i := range dom.Devices.Interfaces {
		iface := &dom.Devices.Interfaces[i]
		if iface.Source != nil && iface.Source.Network != nil {
			iface.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: iface.Source.Network.Network}}
		}
	}
}

// decorateHVM is what the three share: a fully virtualized guest with
// ACPI (graceful shutdown), the profile's firmware, the first hard disk
// as the boot disk, and every device restyled for the driver.
func decorateHVM(dom *libvirtxml.Domain, p Plan) {
	dom.OS = &libvirtxml.DomainOS{
		Type:        &libvirtxml.DomainOSType{Type: "hvm"},
		Firmware:    p.Profile.Devices.Firmware,
		BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
	}
	dom.Features = &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}}
	devices := dom.Devices
	for i := range devices.Disks {
		devices.Disks[i] = Restyle(p.Profile, devices.Disks[i])
	}
	for i := range devices.Interfaces {
		devices.Interfaces[i].Model = nicModel(p.Profile.Devices.NICModel)
	}
}

// Restyle spells a <disk> made the QEMU way (virtio, driver qemu, serial,
// SATA CD-ROM) for the profile's driver: its buses, its disk driver, no
// serial where it has none, no per-device boot order (the <os> boot
// order picks the first hard disk, which is the root disk). A profile
// without Devices (QEMU) gets the disk unchanged.
func Restyle(p hypervisor.Profile, d libvirtxml.DomainDisk) libvirtxml.DomainDisk {
	dev := p.Devices
	if dev == (hypervisor.Devices{}) {
		return d
	}
	if d.Target != nil {
		target := *d.Target
		target.Bus = dev.DiskBus
		if d.Device == "cdrom" {
			target.Bus = dev.DiscBus
		}
		d.Target = &target
	}
	switch dev.DiskDriver {
	case "-":
		d.Driver = nil
	case "":
	default:
		if d.Driver != nil {
			d.Driver = &libvirtxml.DomainDiskDriver{Name: dev.DiskDriver, Type: d.Driver.Type}
		}
	}
	if dev.NoSerials {
		d.Serial = ""
	}
	d.Boot = nil
	return d
}

// PersistentDiskFor is the <disk> attach_disk plugs into a domain of the
// profile's driver (PersistentDiskDevice, restyled).
// On QEMU's SCSI profile it is the virtio-blk disk moved onto the
// virtio-scsi controller (OnSCSI).
func PersistentDiskFor(p hypervisor.Profile, volPath string, format disk.Format, diskCID, target string) (libvirtxml.DomainDisk, error) {
	d := PersistentDiskDevice(volPath, format, diskCID, target)
	if onSCSIController(p) {
		d, err := OnSCSI(d)
		if err == nil && faults.Active(faults.WrongDiskHint) {
			*d.Address.Drive.Target++
		}
		return d, err
	}
	return Restyle(p, d), nil
}

// nicModel: "-" is the driver's own NIC (Xen's PV netfront), no <model>.
func nicModel(model string) *libvirtxml.DomainInterfaceModel {
	if model == "" || model == "-" {
		return nil
	}
	return &libvirtxml.DomainInterfaceModel{Type: model}
}

// scsiController is the LSI Logic controller VirtualBox and VMware
// guests' kernels drive (mptspi) and whose target ids the hints name.
func scsiController() libvirtxml.DomainController {
	index := uint(0)
	return libvirtxml.DomainController{Type: "scsi", Index: &index, Model: "lsilogic"}
}
