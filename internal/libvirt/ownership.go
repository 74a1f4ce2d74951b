package libvirt

import (
	"context"
	"fmt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
)

// ownedDisk finds a disk (or snapshot) volume that carries our ownership
// record. A disk made by an earlier version without a sidecar is adopted
// when one of our domains uses it: its record is written then. Any other
// volume of our name shape is ErrNotFound, and is never touched.
func (b *Backend) ownedDisk(ctx context.Context, cid string) (storage.Volume, error) {
	d, err := b.FindVolume(ctx, cid)
	if err != nil {
		return storage.Volume{}, err
	}
	ownErr := b.RequireOwned(ctx, cid)
	if !cpierr.IsNotFound(ownErr) {
		return d, ownErr
	}
	users, err := b.diskUsers(d, "")
	if err != nil {
		return storage.Volume{}, err
	}
	if len(users) == 0 {
		return storage.Volume{}, ownErr
	}
	owner := storage.NewOwner(storage.KindDisk)
	owner.Adopted = true
	if err := b.WriteMeta(ctx, cid, storage.MetaDocument{Owner: owner}); err != nil {
		return storage.Volume{}, fmt.Errorf("adopting disk '%s' of VM %s: %w", cid, users[0].VM, err)
	}
	b.log.Info("adopted a disk an earlier version made: one of our VMs uses it", "disk", cid, "vm", users[0].VM)
	return d, nil
}

// ownedStemcell finds a stemcell volume that carries our ownership
// record. One an earlier version imported without a record is adopted
// when one of our domains names it as its stemcell.
func (b *Backend) ownedStemcell(ctx context.Context, cid string) (storage.Volume, error) {
	v, err := b.LookupStemcell(ctx, cid)
	if err != nil {
		return storage.Volume{}, err
	}
	ownErr := b.RequireOwned(ctx, cid)
	if !cpierr.IsNotFound(ownErr) {
		return v, ownErr
	}
	users, err := b.vmsUsingStemcell(cid)
	if err != nil {
		return storage.Volume{}, err
	}
	if len(users) == 0 {
		return storage.Volume{}, fmt.Errorf("stemcell '%s': %w", cid, ownErr)
	}
	owner := storage.NewOwner(storage.KindStemcell)
	owner.Adopted = true
	if err := b.WriteMeta(ctx, cid, storage.MetaDocument{Owner: owner}); err != nil {
		return storage.Volume{}, fmt.Errorf("adopting stemcell '%s' of VM %s: %w", cid, users[0], err)
	}
	b.log.Info("adopted a stemcell an earlier version made: one of our VMs uses it", "stemcell", cid, "vm", users[0])
	return v, nil
}

// SetDiskMetadata replaces the metadata of one of our disks.
func (b *Backend) SetDiskMetadata(ctx context.Context, cid string, meta disk.Metadata) error {
	if _, err := b.ownedDisk(ctx, cid); err != nil {
		return fmt.Errorf("setting metadata of disk '%s': %w", cid, err)
	}
	return b.Pool.SetDiskMetadata(ctx, cid, meta)
}

// GetDiskMetadata reads the metadata of one of our disks.
func (b *Backend) GetDiskMetadata(ctx context.Context, cid string) (disk.Metadata, error) {
	if _, err := b.ownedDisk(ctx, cid); err != nil {
		return nil, fmt.Errorf("reading metadata of disk '%s': %w", cid, err)
	}
	return b.Pool.GetDiskMetadata(ctx, cid)
}

// beginVM sweeps old orphans, then writes the new VM's creation record
// before anything of the VM exists; the record goes as create_vm's last
// step (finish), so a call killed anywhere leaves it for the sweep. On
// failure the undo list ends the record after removing the rest.
func (b *Backend) beginVM(ctx context.Context, cid string, undo *undoList) (finish func() error, err error) {
	b.sweepOrphans(ctx)
	finish, err = b.BeginCreate(ctx, cid)
	if err != nil {
		return nil, err
	}
	undo.push(func() {
		if err := finish(); err != nil {
			b.log.Warn("could not remove the creation record; the sweep will", "vm", cid, "error", err)
		}
	})
	return finish, nil
}
