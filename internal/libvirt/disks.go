package libvirt

import (
	"context"
	"errors"
	"fmt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
)

// CreateDisk makes an empty volume named spec.CID of spec.SizeMiB MiB, in
// spec.Format (qcow2 when unset). It is thin: blocks are allocated as the
// guest writes. A disk larger than the pool's free space is refused with
// ErrNoSpace up front, so a guest never meets a full pool on a disk that
// could never have fitted.
func (b *Backend) CreateDisk(ctx context.Context, spec disk.Spec) error {
	if err := b.refused(hypervisor.OpCreateDisk, fmt.Sprintf("creating disk '%s'", spec.CID)); err != nil {
		return err
	}
	if b.containers() {
		return b.createContainerDisk(ctx, spec)
	}
	if spec.SizeMiB <= 0 {
		return fmt.Errorf("creating disk '%s': size must be a positive number of MiB, got %d", spec.CID, spec.SizeMiB)
	}
	format := spec.Format
	if format == "" {
		format = disk.FormatQcow2
	}
	size := uint64(spec.SizeMiB) * storage.MiB
	if err := b.EnsureSpace(ctx, size); err != nil {
		return fmt.Errorf("creating disk '%s' of %d MiB: %w", spec.CID, spec.SizeMiB, err)
	}
	finish, err := b.beginDisk(ctx, spec.CID)
	if err != nil {
		return err
	}
	if _, err := b.CreateVolume(ctx, storage.ThinVolume(spec.CID, size, format)); err != nil {
		// Cut off mid-call, libvirtd may still make the volume, named
		// with the CID minted for this call: ours, and never returned.
		b.undoDisk(ctx, spec.CID, finish)
		return fmt.Errorf("creating disk '%s' of %d MiB (%s): %w", spec.CID, spec.SizeMiB, format, err)
	}
	if err := finish(); err != nil {
		b.undoDisk(ctx, spec.CID, finish)
		return fmt.Errorf("creating disk '%s': %w", spec.CID, err)
	}
	b.log.Info("created disk", "disk", spec.CID, "size_mib", spec.SizeMiB, "format", format)
	return nil
}

// beginDisk writes a new disk's creation record, then its ownership
// record, before any data: a call killed anywhere leaves the creation
// record for the sweep. It returns the step that ends the creation record.
func (b *Backend) beginDisk(ctx context.Context, cid string) (finish func() error, err error) {
	finish, err = b.BeginCreate(ctx, cid)
	if err != nil {
		return nil, fmt.Errorf("creating disk '%s': %w", cid, err)
	}
	if err := b.WriteMeta(ctx, cid, storage.MetaDocument{Owner: storage.NewOwner(storage.KindDisk)}); err != nil {
		b.undoDisk(ctx, cid, finish)
		return nil, fmt.Errorf("creating disk '%s': writing its ownership record: %w", cid, err)
	}
	return finish, nil
}

// undoDisk removes what a failed create_disk made, its creation record
// last (should the undo fail, the sweep still finds the rest).
func (b *Backend) undoDisk(ctx context.Context, cid string, finish func() error) {
	b.UndoVolume(ctx, cid)
	b.UndoVolume(ctx, storage.MetaVolumeName(cid))
	if err := finish(); err != nil {
		b.log.Warn("could not remove the creation record; the sweep will", "disk", cid, "error", err)
	}
}

// DeleteDisk removes the disk and its metadata. While any VM of ours uses
// the disk (running, or in its definition for the next start) nothing is
// touched and the answer is ErrInUse naming the VM. A missing disk is
// ErrNotFound; a metadata sidecar left by an earlier, interrupted delete
// is removed on the way. A volume without our ownership record is
// ErrNotFound too, and stays.
func (b *Backend) DeleteDisk(ctx context.Context, cid string) error {
	d, err := b.ownedDisk(ctx, cid)
	if err != nil {
		if cpierr.IsNotFound(err) {
			_ = b.DeleteMeta(ctx, cid)
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
	// The data first, the record last: a delete cut off in between is
	// repeated by the director and finds the sidecar to finish with.
	if err := b.DeleteVolume(d.Vol); err != nil {
		return fmt.Errorf("deleting disk '%s': %w", cid, err)
	}
	if err := b.DeleteMeta(ctx, cid); err != nil {
		return fmt.Errorf("deleting disk '%s': data deleted, but %w", cid, err)
	}
	b.log.Info("deleted disk", "disk", cid)
	return nil
}

// HasDisk tells whether the disk's volume exists and is ours.
func (b *Backend) HasDisk(ctx context.Context, cid string) (bool, error) {
	_, err := b.ownedDisk(ctx, cid)
	switch {
	case err == nil:
		return true, nil
	case cpierr.IsNotFound(err):
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
	d, err := b.ownedDisk(ctx, cid)
	if err != nil {
		return fmt.Errorf("resizing disk '%s': %w", cid, err)
	}
	size := uint64(sizeMiB) * storage.MiB
	switch {
	case size == d.Capacity:
		b.log.Info("disk already has the requested size", "disk", cid, "size_mib", sizeMiB)
		return nil
	case size < d.Capacity:
		return fmt.Errorf("resizing disk '%s' from %d MiB to %d MiB: %w", cid, d.Capacity/storage.MiB, sizeMiB, errShrink)
	}
	if err := b.refuseIfUsed(d, "resizing"); err != nil {
		return err
	}
	if err := b.EnsureSpace(ctx, size-d.Capacity); err != nil {
		return fmt.Errorf("resizing disk '%s' to %d MiB: %w", cid, sizeMiB, err)
	}
	if err := b.conn.StorageVolResize(d.Vol, size, 0); err != nil {
		return fmt.Errorf("resizing disk '%s' from %d MiB to %d MiB: %w", cid, d.Capacity/storage.MiB, sizeMiB, host.Classify(err))
	}
	if b.containers() {
		if err := growContainerFilesystem(d); err != nil {
			return fmt.Errorf("resizing disk '%s' to %d MiB: %w", cid, sizeMiB, err)
		}
	}
	b.log.Info("resized disk", "disk", cid, "from_mib", d.Capacity/storage.MiB, "to_mib", sizeMiB)
	return nil
}

// refuseIfUsed answers ErrNotSupported when a VM uses the disk.
func (b *Backend) refuseIfUsed(d storage.Volume, doing string) error {
	users, err := b.diskUsers(d, "")
	if err != nil {
		return fmt.Errorf("%s disk '%s': %w", doing, d.CID, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("%s disk '%s' in place: %s; detach it first: %w", doing, d.CID, describeUsers(users), cpierr.ErrNotSupported)
	}
	return nil
}
