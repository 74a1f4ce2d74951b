package hypervisor

import (
	"fmt"
	"strconv"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// Devices is how one hypervisor's domain spells its devices: the buses of
// hard disks and of the settings disc, the disk driver libvirt's driver
// takes, whether a disk can carry a serial, the NIC model and the
// firmware. Empty strings keep the QEMU spelling (virtio, SATA CD-ROM,
// driver qemu, serials, virtio NICs, BIOS).
type Devices struct {
	// DiskBus and DiscBus are the <target bus> of hard disks and of the
	// settings disc.
	DiskBus, DiscBus string
	// DiskDriver is the <driver name> of file disks; "-" for none (the
	// driver takes the image as it is).
	DiskDriver string
	// NoSerials: the driver has no <serial> for a disk, so the hint cannot
	// be a serial the guest names the disk by.
	NoSerials bool
	// NICModel is the <model type> of every NIC; "-" for none (the
	// driver's paravirtual NIC).
	NICModel string
	// Firmware is the <os firmware> ("efi"), or "" for the BIOS default.
	Firmware string
}

// Operation is a CPI method a hypervisor may be unable to do.
type Operation string

const (
	OpImportStemcell Operation = "create_stemcell"
	OpCreateVM       Operation = "create_vm"
	OpCreateDisk     Operation = "create_disk"
	OpAttachDisk     Operation = "attach_disk"
	OpDetachDisk     Operation = "detach_disk"
	OpSetVMMetadata  Operation = "set_vm_metadata"
)

// Refusal is why the profile's driver cannot do op ("" when it can).
func (p Profile) Refusal(op Operation) string { return p.Refused[op] }

// RefusalError is the error a refused operation answers: it names the
// driver and says why; the caller wraps cpierr.ErrNotSupported with it.
func (p Profile) RefusalError(op Operation) error {
	why := p.Refusal(op)
	if why == "" {
		return nil
	}
	return fmt.Errorf("%s is not supported by libvirt's %s driver: %s", op, p.Driver, why)
}

// scsiHint is the hint of a disk on a SCSI bus, the rule vSphere and
// VirtualBox stemcells' agents resolve (device path resolution "scsi"):
// volume_id is the SCSI target id, which the agent finds under
// /sys/bus/scsi/devices/<host>:0:<id>:0 after a rescan; the path is kept
// as a fallback for people reading the settings.
func scsiHint(unit func(index int) int) func(target string) disk.Hint {
	return func(target string) disk.Hint {
		i, ok := TargetIndex(target)
		if !ok {
			return disk.Hint{Path: "/dev/" + target}
		}
		return disk.Hint{VolumeID: strconv.Itoa(unit(i)), Path: "/dev/" + target}
	}
}

// pathHint is the hint of a disk the agent finds by its device path
// (OpenStack stemcells' "virtio" resolution falls back to the path when
// the disk has no by-id serial, as on Xen's blkfront).
func pathHint(target string) disk.Hint { return disk.Hint{Path: "/dev/" + target} }

// TargetIndex is the disk number of a target: sda 0, sdc 2, xvdaa 26.
func TargetIndex(target string) (int, bool) {
	for _, prefix := range []string{"xvd", "sd", "hd", "vd"} {
		if len(target) > len(prefix) && target[:len(prefix)] == prefix {
			return suffixIndex(target[len(prefix):])
		}
	}
	return 0, false
}

func suffixIndex(s string) (int, bool) {
	switch {
	case len(s) == 1 && s[0] >= 'a' && s[0] <= 'z':
		return int(s[0] - 'a'), true
	case len(s) == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z':
		return letters + int(s[0]-'a')*letters + int(s[1]-'a'), true
	}
	return 0, false
}
