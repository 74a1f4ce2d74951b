package xmldef

import (
	"fmt"

	"libvirt.org/go/libvirtxml"
)

// SCSIController is the index of the virtio-scsi controller the disks of
// vSphere-format stemcells' VMs sit on.
const SCSIController = 0

// maxSCSITarget is the last target a virtio-scsi controller addresses
// (QEMU's virtio-scsi has 256 targets per bus).
const maxSCSITarget = 255

// SCSIControllerDevice is the virtio-scsi controller: the SCSI host whose
// targets the vSphere agent's "scsi" resolution rescans and reads.
func SCSIControllerDevice() libvirtxml.DomainController {
	index := uint(SCSIController)
	return libvirtxml.DomainController{Type: "scsi", Model: "virtio-scsi", Index: &index}
}

// SCSIDiskDevice is a file disk on the virtio-scsi controller at the given
// target, LUN 0: the guest sees it as <host>:0:<target>:0, so the hint's
// volume_id is the target. dev is only libvirt's name for it.
func SCSIDiskDevice(volPath, format, serial, dev string, target int) libvirtxml.DomainDisk {
	controller, bus, unit, tgt := uint(SCSIController), uint(0), uint(0), uint(target)
	d := FileDiskDevice(volPath, format, serial, dev)
	d.Target.Bus = "scsi"
	d.Address = &libvirtxml.DomainAddress{Drive: &libvirtxml.DomainAddressDrive{
		Controller: &controller, Bus: &bus, Target: &tgt, Unit: &unit,
	}}
	return d
}

// SCSITargetOf is the SCSI target of a disk on our controller, and
// whether it is one.
func SCSITargetOf(d libvirtxml.DomainDisk) (int, bool) {
	if d.Target == nil || d.Target.Bus != "scsi" || d.Address == nil || d.Address.Drive == nil {
		return 0, false
	}
	a := d.Address.Drive
	if a.Controller == nil || *a.Controller != SCSIController || a.Target == nil {
		return 0, false
	}
	return int(*a.Target), true
}

// FreeSCSITarget is the lowest target of the controller that no disk of
// either definition (live and persistent: a disk pending hot-unplug still
// holds its target) takes.
func FreeSCSITarget(defs ...*libvirtxml.Domain) (int, error) {
	used := map[int]bool{}
	for _, def := range defs {
		for _, d := range DiskList(def) {
			if t, ok := SCSITargetOf(d); ok {
				used[t] = true
			}
		}
	}
	for t := 0; t <= maxSCSITarget; t++ {
		if !used[t] {
			return t, nil
		}
	}
	return 0, fmt.Errorf("no free SCSI target on controller %d: all %d are taken", SCSIController, maxSCSITarget+1)
}
