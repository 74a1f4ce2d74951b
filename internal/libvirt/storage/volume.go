package storage

import (
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// MiB is one MiB in bytes: BOSH sizes disks in MiB, libvirt in bytes.
const MiB = 1 << 20

// Volume is what disk and VM operations need to know of a volume.
type Volume struct {
	CID      string
	Vol      golibvirt.StorageVol
	Path     string
	Format   disk.Format
	Capacity uint64 // bytes, as the guest sees it
}

// FindVolume looks up the volume of a disk, snapshot or stemcell cid with
// its path, format and size. ErrNotFound when it is not there.
func (b *Pool) FindVolume(ctx context.Context, cid string) (Volume, error) {
	vol, err := b.LookupVolume(ctx, cid)
	if err != nil {
		return Volume{}, err
	}
	def, err := b.VolumeDefinition(vol)
	if err != nil {
		return Volume{}, err
	}
	if def.Target == nil || def.Target.Path == "" || def.Capacity == nil {
		return Volume{}, fmt.Errorf("volume '%s': XML has no target path or capacity", cid)
	}
	capacity, err := sizeInBytes(def.Capacity)
	if err != nil {
		return Volume{}, fmt.Errorf("volume '%s': %w", cid, err)
	}
	format := disk.FormatRaw
	if def.Target.Format != nil && def.Target.Format.Type != "" {
		format = disk.Format(def.Target.Format.Type)
	}
	return Volume{CID: cid, Vol: vol, Path: def.Target.Path, Format: format, Capacity: capacity}, nil
}
