package xmldef

import (
	"fmt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"libvirt.org/go/libvirtxml"
	"path"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// PersistentDiskDevice is the <disk> element for a persistent disk. It is a
// virtio-blk device whose serial is disk.DiskSerial(diskCID): the guest
// sees /dev/disk/by-id/virtio-<serial>, which for a disk CID of the by-id
// scheme is the CID itself, so the agent's by-id globs over the CID match
// that one device and no partition.
func PersistentDiskDevice(volPath string, format disk.Format, diskCID, target string) libvirtxml.DomainDisk {
	return FileDiskDevice(volPath, string(format), disk.DiskSerial(diskCID), target)
}

// FileDiskDevice is a virtio-blk disk backed by a file in the pool.
// cache='none' with io='native' would need O_DIRECT support from the pool's
// filesystem (tmpfs has none), so the defaults are kept.
func FileDiskDevice(volPath, format, serial, target string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format, Discard: "unmap"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: volPath}},
		Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: "virtio"},
		Serial: serial,
	}
}

func DiskList(def *libvirtxml.Domain) []libvirtxml.DomainDisk {
	if def == nil || def.Devices == nil {
		return nil
	}
	return def.Devices.Disks
}

// FindDisk finds the disk of cid in def: by our serial, or by its
// source file (a disk attached by hand or by older code has no serial).
func FindDisk(def *libvirtxml.Domain, cid, volPath string) *libvirtxml.DomainDisk {
	serial := disk.DiskSerial(cid)
	disks := DiskList(def)
	for i := range disks {
		if disks[i].Serial == serial || (volPath != "" && DiskSourcePath(disks[i]) == volPath) {
			return &disks[i]
		}
	}
	return nil
}

// DiskSourcePath is the file or block device behind a <disk>, or the
// volume name for a <disk type='volume'>.
func DiskSourcePath(d libvirtxml.DomainDisk) string {
	switch {
	case d.Source == nil:
		return ""
	case d.Source.File != nil:
		return d.Source.File.File
	case d.Source.Block != nil:
		return d.Source.Block.Dev
	case d.Source.Volume != nil:
		return d.Source.Volume.Volume
	}
	return ""
}

// PersistentDiskCIDs are the disk CIDs behind the disks of defs, each
// once, in definition order.
func PersistentDiskCIDs(defs ...*libvirtxml.Domain) []string {
	seen := map[string]bool{}
	cids := []string{}
	for _, def := range defs {
		for _, d := range DiskList(def) {
			name := path.Base(DiskSourcePath(d))
			if disk.ValidCID(name) && !seen[name] {
				seen[name] = true
				cids = append(cids, name)
			}
		}
	}
	return cids
}
func TargetOf(d libvirtxml.DomainDisk) string {
	if d.Target == nil {
		return ""
	}
	return d.Target.Dev
}

// FreeTarget is the first persistent disk target (vdc, vdd, ... vdz,
// vdaa, ... for QEMU) that neither definition uses.
func FreeTarget(p hypervisor.Profile, used map[string]bool) (string, error) {
	for i := 0; ; i++ {
		target, err := p.PersistentTarget(i)
		if err != nil {
			return "", fmt.Errorf("no free device target: %w", err)
		}
		if !used[target] {
			return target, nil
		}
	}
}

// UsedTargets are the device names the definitions' disks take.
func UsedTargets(defs ...*libvirtxml.Domain) map[string]bool {
	used := map[string]bool{}
	for _, def := range defs {
		for _, d := range DiskList(def) {
			if d.Target != nil {
				used[d.Target.Dev] = true
			}
		}
	}
	return used
}
