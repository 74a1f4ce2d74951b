package xmldef

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

// SCSIController is the index of the virtio-scsi controller the disks of
// vSphere-format stemcells' VMs sit on (hypervisor.QEMUvSphere).
const SCSIController = 0

// SCSIControllerDevice is the virtio-scsi controller: the SCSI host whose
// targets the vSphere agent's "scsi" resolution rescans and reads.
func SCSIControllerDevice() libvirtxml.DomainController {
	index := uint(SCSIController)
	return libvirtxml.DomainController{Type: "scsi", Model: "virtio-scsi", Index: &index}
}

// OnSCSI moves a hard disk (FileDiskDevice) onto the virtio-scsi
// controller at the target its device name numbers (sda 0, sdc 2), LUN 0:
// the guest sees it as <host>:0:<target>:0, the hint's volume_id. The
// address is written out rather than left to libvirt, whose own choice
// for virtio-scsi is target 0 with the disk number as the LUN.
func OnSCSI(d libvirtxml.DomainDisk) (libvirtxml.DomainDisk, error) {
	if d.Target == nil {
		return d, fmt.Errorf("disk has no target to place on the SCSI controller")
	}
	n, ok := hypervisor.TargetIndex(d.Target.Dev)
	if !ok {
		return d, fmt.Errorf("disk target '%s' names no disk number for a SCSI target", d.Target.Dev)
	}
	controller, bus, unit, target := uint(SCSIController), uint(0), uint(0), uint(n)
	moved := *d.Target
	moved.Bus = hypervisor.DiskBusSCSI
	d.Target = &moved
	d.Address = &libvirtxml.DomainAddress{Drive: &libvirtxml.DomainAddressDrive{
		Controller: &controller, Bus: &bus, Target: &target, Unit: &unit,
	}}
	return d, nil
}

// hardDisksOnSCSI moves every hard disk of a new domain onto the
// controller (the CD-ROM stays on SATA).
func hardDisksOnSCSI(disks []libvirtxml.DomainDisk) error {
	for i, d := range disks {
		if d.Device == "cdrom" {
			continue
		}
		moved, err := OnSCSI(d)
		if err != nil {
			return err
		}
		disks[i] = moved
	}
	return nil
}

// SCSITargetOf is the SCSI target of a disk on our controller, and
// whether it is one.
func SCSITargetOf(d libvirtxml.DomainDisk) (int, bool) {
	if d.Target == nil || d.Target.Bus != hypervisor.DiskBusSCSI || d.Address == nil || d.Address.Drive == nil {
		return 0, false
	}
	a := d.Address.Drive
	if a.Controller == nil || *a.Controller != SCSIController || a.Target == nil {
		return 0, false
	}
	return int(*a.Target), true
}

// onSCSIController reports whether the profile's QEMU domain keeps its
// hard disks on the virtio-scsi controller.
func onSCSIController(p hypervisor.Profile) bool {
	return p.Driver == hypervisor.QEMU.Driver && p.Devices.DiskBus == hypervisor.DiskBusSCSI
}
