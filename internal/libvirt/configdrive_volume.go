package libvirt

import (
	"bytes"
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
)

// createConfigDrive stores the config drive ISO as a raw volume of exactly
// its size and returns the volume's path. The ISO holds agent settings
// with mbus credentials: its bytes are never logged.
func (b *Backend) createConfigDrive(ctx context.Context, cid string, iso []byte, undo *undoList) (string, error) {
	if len(iso) == 0 {
		return "", fmt.Errorf("config drive for VM '%s' is empty", cid)
	}
	doc := libvirtxml.StorageVolume{
		Name:     xmldef.ConfigDriveVolumeName(cid),
		Capacity: &libvirtxml.StorageVolumeSize{Value: uint64(len(iso)), Unit: "bytes"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: string(disk.FormatRaw)}},
	}
	vol, path, err := b.createOwnedVolume(ctx, doc, "config drive", undo)
	if err != nil {
		return "", err
	}
	if err := b.uploadConfigDrive(ctx, vol, iso); err != nil {
		return "", err
	}
	return path, nil
}

func (b *Backend) uploadConfigDrive(ctx context.Context, vol golibvirt.StorageVol, iso []byte) error {
	if err := b.UploadVolume(ctx, vol, bytes.NewReader(iso), uint64(len(iso))); err != nil {
		return fmt.Errorf("writing config drive volume '%s' (%d bytes): %w", vol.Name, len(iso), err)
	}
	return nil
}
