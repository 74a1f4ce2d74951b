package libvirt

import (
	"context"
	"errors"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
)

// mib is one MiB in bytes: BOSH sizes disks in MiB, libvirt in bytes.
const mib = 1 << 20

// diskVolume is what disk and VM operations need to know of a volume.
type diskVolume struct {
	CID      string
	Vol      golibvirt.StorageVol
	Path     string
	Format   disk.Format
	Capacity uint64 // bytes, as the guest sees it
}

// findVolume looks up the volume of a disk, snapshot or stemcell cid with
// its path, format and size. ErrNotFound when it is not there.
func (b *Backend) findVolume(ctx context.Context, cid string) (diskVolume, error) {
	vol, err := b.lookupVolume(ctx, cid)
	if err != nil {
		return diskVolume{}, err
	}
	def, err := b.volumeDefinition(vol)
	if err != nil {
		return diskVolume{}, err
	}
	if def.Target == nil || def.Target.Path == "" || def.Capacity == nil {
		return diskVolume{}, fmt.Errorf("volume '%s': XML has no target path or capacity", cid)
	}
	capacity, err := sizeInBytes(def.Capacity)
	if err != nil {
		return diskVolume{}, fmt.Errorf("volume '%s': %w", cid, err)
	}
	format := disk.FormatRaw
	if def.Target.Format != nil && def.Target.Format.Type != "" {
		format = disk.Format(def.Target.Format.Type)
	}
	return diskVolume{CID: cid, Vol: vol, Path: def.Target.Path, Format: format, Capacity: capacity}, nil
}

// CreateDisk makes an empty volume named spec.CID of spec.SizeMiB MiB, in
// spec.Format (qcow2 when unset). It is thin: blocks are allocated as the
// guest writes. A disk larger than the pool's free space is refused with
// ErrNoSpace up front, so a guest never meets a full pool on a disk that
// could never have fitted.
func (b *Backend) CreateDisk(ctx context.Context, spec disk.Spec) error {
	if spec.SizeMiB <= 0 {
		return fmt.Errorf("creating disk '%s': size must be a positive number of MiB, got %d", spec.CID, spec.SizeMiB)
	}
	format := spec.Format
	if format == "" {
		format = disk.FormatQcow2
	}
	size := uint64(spec.SizeMiB) * mib
	if err := b.ensureSpace(ctx, size); err != nil {
		return fmt.Errorf("creating disk '%s' of %d MiB: %w", spec.CID, spec.SizeMiB, err)
	}
	if _, err := b.createVolume(ctx, thinVolume(spec.CID, size, format)); err != nil {
		return fmt.Errorf("creating disk '%s' of %d MiB (%s): %w", spec.CID, spec.SizeMiB, format, err)
	}
	b.log.Info("created disk", "disk", spec.CID, "size_mib", spec.SizeMiB, "format", format)
	return nil
}

// ensureSpace fails with ErrNoSpace when the pool has less than size
// bytes free. libvirt keeps the pool's free space current as volumes
// come and go through it; a refresh is not done because it fails while
// another call is building a volume.
func (b *Backend) ensureSpace(ctx context.Context, size uint64) error {
	pool, err := b.storagePool(ctx)
	if err != nil {
		return err
	}
	_, _, _, available, err := b.conn.StoragePoolGetInfo(pool)
	if err != nil {
		return fmt.Errorf("reading free space of storage pool '%s': %w", pool.Name, host.Classify(err))
	}
	if size > available {
		return fmt.Errorf("storage pool '%s' has %d MiB free, %d MiB needed: %w", pool.Name, available/mib, (size+mib-1)/mib, cpierr.ErrNoSpace)
	}
	return nil
}

// DeleteDisk removes the disk and its metadata. While any VM of ours uses
// the disk (running, or in its definition for the next start) nothing is
// touched and the answer is ErrInUse naming the VM. A missing disk is
// ErrNotFound; a metadata sidecar left by an earlier, interrupted delete
// is removed on the way.
func (b *Backend) DeleteDisk(ctx context.Context, cid string) error {
	d, err := b.findVolume(ctx, cid)
	if err != nil {
		if isNotFound(err) {
			_ = b.deleteMeta(ctx, cid)
		}
		return fmt.Errorf("deleting disk '%s': %w", cid, err)
	}
	users, err := b.diskUsers(d, "")
	if err != nil {
		return fmt.Errorf("deleting disk '%s': %w", cid, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("deleting disk '%s': %s: %w", cid, describeUsers(users), cpierr.ErrInUse)
	}
	if err := b.deleteVolume(d.Vol); err != nil {
		return fmt.Errorf("deleting disk '%s': %w", cid, err)
	}
	if err := b.deleteMeta(ctx, cid); err != nil {
		return fmt.Errorf("deleting disk '%s': data deleted, but %w", cid, err)
	}
	b.log.Info("deleted disk", "disk", cid)
	return nil
}

// HasDisk tells whether the disk's volume exists.
func (b *Backend) HasDisk(ctx context.Context, cid string) (bool, error) {
	_, err := b.lookupVolume(ctx, cid)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("checking disk '%s': %w", cid, err)
}

// errShrink says why a smaller size is refused: the filesystem on the
// disk fills it, and cutting its end off destroys data.
var errShrink = errors.New("shrinking a disk is not possible: it would cut off data at its end")

// ResizeDisk grows a detached disk in place to sizeMiB. The same size is
// a no-op; a smaller size is an error (errShrink). A disk a VM uses is
// ErrNotSupported: the director detaches disks before resize_disk, and
// NotSupported makes it fall back to a new disk plus a copy, which is
// safe, where growing under a running guest or a stopped VM's definition
// would not be.
func (b *Backend) ResizeDisk(ctx context.Context, cid string, sizeMiB int) error {
	if sizeMiB <= 0 {
		return fmt.Errorf("resizing disk '%s': size must be a positive number of MiB, got %d", cid, sizeMiB)
	}
	d, err := b.findVolume(ctx, cid)
	if err != nil {
		return fmt.Errorf("resizing disk '%s': %w", cid, err)
	}
	size := uint64(sizeMiB) * mib
	switch {
	case size == d.Capacity:
		b.log.Info("disk already has the requested size", "disk", cid, "size_mib", sizeMiB)
		return nil
	case size < d.Capacity:
		return fmt.Errorf("resizing disk '%s' from %d MiB to %d MiB: %w", cid, d.Capacity/mib, sizeMiB, errShrink)
	}
	if err := b.refuseIfUsed(d, "resizing"); err != nil {
		return err
	}
	if err := b.ensureSpace(ctx, size-d.Capacity); err != nil {
		return fmt.Errorf("resizing disk '%s' to %d MiB: %w", cid, sizeMiB, err)
	}
	if err := b.conn.StorageVolResize(d.Vol, size, 0); err != nil {
		return fmt.Errorf("resizing disk '%s' from %d MiB to %d MiB: %w", cid, d.Capacity/mib, sizeMiB, host.Classify(err))
	}
	b.log.Info("resized disk", "disk", cid, "from_mib", d.Capacity/mib, "to_mib", sizeMiB)
	return nil
}

// refuseIfUsed answers ErrNotSupported when a VM uses the disk.
func (b *Backend) refuseIfUsed(d diskVolume, doing string) error {
	users, err := b.diskUsers(d, "")
	if err != nil {
		return fmt.Errorf("%s disk '%s': %w", doing, d.CID, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("%s disk '%s' in place: %s; detach it first: %w", doing, d.CID, describeUsers(users), cpierr.ErrNotSupported)
	}
	return nil
}
