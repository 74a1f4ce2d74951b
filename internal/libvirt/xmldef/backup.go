package xmldef

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// Backup is a push-mode <domainbackup> that copies the disk of diskCID
// (found by its serial or its volume's path), and no other disk of the
// domain, into targetPath (an existing volume of the disk's format).
func Backup(live *libvirtxml.Domain, diskCID, volPath string, format disk.Format, targetPath string) (string, error) {
	device := FindDisk(live, diskCID, volPath)
	if device == nil {
		return "", fmt.Errorf("disk '%s' is no longer in the running domain", diskCID)
	}
	var disks []libvirtxml.DomainBackupPushDisk
	for _, other := range DiskList(live) {
		name := TargetOf(other)
		if name == "" {
			continue
		}
		if name != TargetOf(*device) {
			disks = append(disks, libvirtxml.DomainBackupPushDisk{Name: name, Backup: "no"})
			continue
		}
		disks = append(disks, libvirtxml.DomainBackupPushDisk{
			Name:   name,
			Backup: "yes",
			Driver: &libvirtxml.DomainBackupDiskDriver{Type: string(format)},
			Target: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: targetPath}},
		})
	}
	doc := libvirtxml.DomainBackup{Push: &libvirtxml.DomainBackupPush{Disks: &libvirtxml.DomainBackupPushDisks{Disks: disks}}}
	xml, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("building backup XML: %w", err)
	}
	return xml, nil
}
