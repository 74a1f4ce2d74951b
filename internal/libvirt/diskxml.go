package libvirt

import (
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// persistentDiskDevice is the <disk> element for a persistent disk. It is a
// virtio-blk device whose serial is disk.DiskSerial(diskCID): the guest
// sees /dev/disk/by-id/virtio-<serial>, which for a disk CID of the by-id
// scheme is the CID itself, so the agent's by-id globs over the CID match
// that one device and no partition.
func persistentDiskDevice(volPath string, format disk.Format, diskCID, target string) libvirtxml.DomainDisk {
	return fileDiskDevice(volPath, string(format), disk.DiskSerial(diskCID), target)
}

// fileDiskDevice is a virtio-blk disk backed by a file in the pool.
// cache='none' with io='native' would need O_DIRECT support from the pool's
// filesystem (tmpfs has none), so the defaults are kept.
func fileDiskDevice(volPath, format, serial, target string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format, Discard: "unmap"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: volPath}},
		Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: "virtio"},
		Serial: serial,
	}
}
