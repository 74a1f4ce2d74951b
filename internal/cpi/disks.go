package cpi

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudfoundry/bosh-cpi-go/apiv1"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/faults"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// CreateDisk makes a persistent disk of size MiB. The VM CID is a placement
// hint for multi-host clouds; one libvirt host needs none.
func (c *CPI) CreateDisk(size int, props apiv1.DiskCloudProps, _ *apiv1.VMCID) (apiv1.DiskCID, error) {
	dprops, err := disk.ParseProps(props)
	if err != nil {
		return apiv1.DiskCID{}, cpierr.New(cpierr.TypeCloudError, err, "creating disk")
	}
	if err := disk.CheckSizeMiB("size", size); err != nil {
		return apiv1.DiskCID{}, cpierr.New(cpierr.TypeCloudError, err, "creating disk")
	}
	b, err := c.openRuntime()
	if err != nil {
		return apiv1.DiskCID{}, err
	}
	spec := disk.Spec{CID: newDiskCID(), SizeMiB: size, Format: dprops.Format}
	err = c.withLocks([]string{spec.CID}, func() error {
		return cpierr.Wrap(b.CreateDisk(c.ctx, spec), "creating disk '%s' of %d MiB", spec.CID, size)
	})
	if err != nil {
		return apiv1.DiskCID{}, err
	}
	c.log.Info("created disk", "disk_cid", spec.CID, "size_mib", size, "format", spec.Format)
	return apiv1.NewDiskCID(spec.CID), nil
}

// DeleteDisk removes a detached disk; an attached one is refused untouched.
func (c *CPI) DeleteDisk(cid apiv1.DiskCID) error {
	return c.onObject(diskKind, cid.AsString(), "deleting", func(b Runtime, id string) error {
		err := b.DeleteDisk(c.ctx, id)
		if errors.Is(err, cpierr.ErrInUse) {
			return cpierr.New(cpierr.TypeCloudError, err, "disk '%s' is attached; detach it before deleting", id)
		}
		return err
	})
}

// HasDisk answers false for anything that is not a disk of ours.
func (c *CPI) HasDisk(cid apiv1.DiskCID) (bool, error) {
	id := cid.AsString()
	if !disk.ValidCID(id) {
		return false, nil
	}
	b, err := c.openRuntime()
	if err != nil {
		return false, err
	}
	found, err := b.HasDisk(c.ctx, id)
	if err != nil {
		return false, cpierr.Wrap(err, "looking up disk '%s'", id)
	}
	return found, nil
}

// AttachDisk is attach_disk for API v1 (no hint returned).
func (c *CPI) AttachDisk(vmCID apiv1.VMCID, diskCID apiv1.DiskCID) error {
	_, err := c.AttachDiskV2(vmCID, diskCID)
	return err
}

// AttachDiskV2 attaches the disk (hot-plugged when the VM runs, persisted in
// its definition) and returns the runtime's hint for it. The agent finds
// the disk by its CID, which is the guest's /dev/disk/by-id name.
func (c *CPI) AttachDiskV2(vmCID apiv1.VMCID, diskCID apiv1.DiskCID) (apiv1.DiskHint, error) {
	vmID, diskID := vmCID.AsString(), diskCID.AsString()
	if !vm.ValidCID(vmID) {
		return apiv1.DiskHint{}, cpierr.VMNotFound(vmID)
	}
	if !disk.ValidCID(diskID) {
		return apiv1.DiskHint{}, cpierr.DiskNotFound(diskID)
	}
	b, err := c.openRuntime()
	if err != nil {
		return apiv1.DiskHint{}, err
	}
	var hint disk.Hint
	start := time.Now()
	err = c.withLocks([]string{vmID, diskID}, func() error {
		var err error
		if hint, err = b.AttachDisk(c.ctx, vmID, diskID); err != nil {
			return c.diskOnVMError(b, vmID, err, "attaching disk '%s' to VM '%s'", diskID, vmID)
		}
		return c.rewriteSettings(b, vmID, func(s *agentsettings.Settings) { s.Disks.Persistent[diskID] = hint })
	})
	if err != nil {
		return apiv1.DiskHint{}, cpierr.Wrap(err, "attaching disk '%s' to VM '%s'", diskID, vmID)
	}
	c.log.Info("attached disk", "vm_cid", vmID, "disk_cid", diskID, "path", hint.Path, "seconds", time.Since(start).Seconds())
	return apiv1.NewDiskHintFromMap(hintMap(hint)), nil
}

// hintMap is the hint as the director stores it; volume_id (the SCSI
// target id of vSphere-format stemcells' agents) only where there is one.
func hintMap(hint disk.Hint) map[string]any {
	m := map[string]any{"id": hint.ID, "path": hint.Path}
	if hint.VolumeID != "" {
		m["volume_id"] = hint.VolumeID
	}
	return m
}

// DetachDisk hot-unplugs the disk and removes it from the definition.
func (c *CPI) DetachDisk(vmCID apiv1.VMCID, diskCID apiv1.DiskCID) error {
	vmID, diskID := vmCID.AsString(), diskCID.AsString()
	if !vm.ValidCID(vmID) {
		return cpierr.VMNotFound(vmID)
	}
	if !disk.ValidCID(diskID) {
		return cpierr.DiskNotFound(diskID)
	}
	b, err := c.openRuntime()
	if err != nil {
		return err
	}
	return c.withLocks([]string{vmID, diskID}, func() error {
		if err := b.DetachDisk(c.ctx, vmID, diskID); err != nil {
			return c.diskOnVMError(b, vmID, err, "detaching disk '%s' from VM '%s'", diskID, vmID)
		}
		err := c.rewriteSettings(b, vmID, func(s *agentsettings.Settings) { delete(s.Disks.Persistent, diskID) })
		return cpierr.Wrap(err, "updating settings of VM '%s'", vmID)
	})
}

// diskOnVMError maps runtime sentinels of a disk operation on a VM; for
// not-found it asks the runtime which of the two is missing.
func (c *CPI) diskOnVMError(b Runtime, vmID string, err error, format string, args ...any) error {
	switch {
	case errors.Is(err, cpierr.ErrNotAttached):
		return cpierr.New(cpierr.TypeDiskNotAttached, err, format, args...)
	case errors.Is(err, cpierr.ErrNotFound):
		if found, herr := b.HasVM(c.ctx, vmID); herr == nil && !found {
			return cpierr.New(cpierr.TypeVMNotFound, err, format, args...)
		}
		return cpierr.New(cpierr.TypeDiskNotFound, err, format, args...)
	}
	return cpierr.Wrap(err, format, args...)
}

// GetDisks lists exactly the persistent disks attached to the VM.
func (c *CPI) GetDisks(cid apiv1.VMCID) ([]apiv1.DiskCID, error) {
	id := cid.AsString()
	if !vm.ValidCID(id) {
		return nil, cpierr.VMNotFound(id)
	}
	b, err := c.openRuntime()
	if err != nil {
		return nil, err
	}
	ids, err := b.AttachedDisks(c.ctx, id)
	if errors.Is(err, cpierr.ErrNotFound) {
		return nil, cpierr.New(cpierr.TypeVMNotFound, err, "listing disks of VM '%s'", id)
	}
	if err != nil {
		return nil, cpierr.Wrap(err, "listing disks of VM '%s'", id)
	}
	out := make([]apiv1.DiskCID, 0, len(ids))
	for _, d := range ids {
		out = append(out, apiv1.NewDiskCID(d))
	}
	return out, nil
}

// ResizeDisk grows a detached disk in place. When that cannot be done the
// answer is NotSupported, and the director creates a new disk and copies.
func (c *CPI) ResizeDisk(cid apiv1.DiskCID, size int) error {
	return c.onObject(diskKind, cid.AsString(), "resizing", func(b Runtime, id string) error {
		if err := disk.CheckSizeMiB("new size", size); err != nil {
			return cpierr.New(cpierr.TypeCloudError, err, "resizing disk '%s'", id)
		}
		return b.ResizeDisk(c.ctx, id, size)
	})
}

// UpdateDisk is update_disk: the size can change in place; a change of
// cloud_properties (the format) cannot, so the director is told to copy.
func (c *CPI) UpdateDisk(cid apiv1.DiskCID, size int, props apiv1.DiskCloudProps) (apiv1.DiskCID, error) {
	dprops, err := disk.ParseProps(props)
	if err != nil {
		return apiv1.DiskCID{}, cpierr.New(cpierr.TypeCloudError, err, "updating disk '%s'", cid.AsString())
	}
	if dprops.Format == disk.FormatRaw {
		return apiv1.DiskCID{}, cpierr.NotSupported("updating disk '%s': changing the format needs a new disk", cid.AsString())
	}
	if err := c.ResizeDisk(cid, size); err != nil {
		return apiv1.DiskCID{}, err
	}
	return cid, nil
}

// SetDiskMetadata keeps the director's metadata with the disk.
func (c *CPI) SetDiskMetadata(cid apiv1.DiskCID, meta apiv1.DiskMeta) error {
	flat, err := flatten(meta)
	if err != nil {
		return cpierr.New(cpierr.TypeCloudError, err, "decoding metadata for disk '%s'", cid.AsString())
	}
	return c.onObject(diskKind, cid.AsString(), "setting metadata of", func(b Runtime, id string) error {
		return b.SetDiskMetadata(c.ctx, id, disk.Metadata(flat))
	})
}

// SnapshotDisk makes a restorable point-in-time copy of the disk.
func (c *CPI) SnapshotDisk(cid apiv1.DiskCID, meta apiv1.DiskMeta) (apiv1.SnapshotCID, error) {
	flat, err := flatten(meta)
	if err != nil {
		return apiv1.SnapshotCID{}, cpierr.New(cpierr.TypeCloudError, err, "decoding snapshot metadata for disk '%s'", cid.AsString())
	}
	snapID := disk.NewSnapshotCID()
	id := cid.AsString()
	if !disk.ValidCID(id) {
		return apiv1.SnapshotCID{}, cpierr.DiskNotFound(id)
	}
	b, snaps, err := c.openSnapshots("snapshotting disk '%s'", id)
	if err != nil {
		return apiv1.SnapshotCID{}, err
	}
	err = c.withHolderLocks(b, id, func() error { return snaps.SnapshotDisk(c.ctx, id, snapID, disk.Metadata(flat)) })
	switch {
	case errors.Is(err, cpierr.ErrNotFound):
		return apiv1.SnapshotCID{}, cpierr.New(cpierr.TypeDiskNotFound, err, "snapshotting disk '%s'", id)
	case err != nil:
		return apiv1.SnapshotCID{}, cpierr.Wrap(err, "snapshotting disk '%s'", id)
	}
	c.log.Info("snapshotted disk", "disk_cid", cid.AsString(), "snapshot_cid", snapID)
	return apiv1.NewSnapshotCID(snapID), nil
}

// DeleteSnapshot removes a snapshot; a foreign or unknown CID touches nothing.
func (c *CPI) DeleteSnapshot(cid apiv1.SnapshotCID) error {
	id := cid.AsString()
	if !disk.ValidSnapshotCID(id) {
		return cpierr.New(cpierr.TypeCloudError, nil, "snapshot '%s' not found: not a snapshot CID of this CPI", id)
	}
	_, snaps, err := c.openSnapshots("deleting snapshot '%s'", id)
	if err != nil {
		return err
	}
	return c.withLocks([]string{id}, func() error {
		err := snaps.DeleteSnapshot(c.ctx, id)
		if errors.Is(err, cpierr.ErrNotFound) {
			// The director has no "snapshot not found" answer and repeats a
			// delete it did not see finish: a gone snapshot is deleted, as
			// the OpenStack and AWS CPIs answer.
			c.log.Info("snapshot already gone", "snapshot", id)
			return nil
		}
		return cpierr.Wrap(err, "deleting snapshot '%s'", id)
	})
}

// openSnapshots opens the runtime and its snapshots; a runtime that takes
// none answers NotSupported, so the director carries on without them.
func (c *CPI) openSnapshots(doing string, args ...any) (Runtime, Snapshots, error) {
	b, err := c.openRuntime()
	if err != nil {
		return nil, nil, err
	}
	snaps, ok := b.(Snapshots)
	if !ok {
		return nil, nil, cpierr.NotSupported(doing+": the %s runtime takes no snapshots", append(args, c.descriptor.Name)...)
	}
	return b, snaps, nil
}

// newDiskCID is a fresh disk CID: the name of the disk's by-id link.
func newDiskCID() string {
	if faults.Active(faults.WrongDiskCID) {
		return disk.LegacyCID()
	}
	return disk.NewCID()
}

// holderLockTries bounds how often a disk may change hands between looking
// up its VM and locking it.
const holderLockTries = 3

// withHolderLocks runs fn under the locks of the VMs that hold the disk and
// the disk's own, VM before disk as everywhere, so an attach or detach of
// another disk of that VM cannot change its devices under fn. The holders
// are read again under the locks: a disk that moved meanwhile is retried.
func (c *CPI) withHolderLocks(b Runtime, diskID string, fn func() error) error {
	for range holderLockTries {
		holders, err := b.DiskHolders(c.ctx, diskID)
		if err != nil {
			return err
		}
		moved := false
		err = c.withLocks(append(holders, diskID), func() error {
			now, err := b.DiskHolders(c.ctx, diskID)
			if err != nil {
				return err
			}
			if !slices.Equal(now, holders) {
				moved = true
				return nil
			}
			return fn()
		})
		if !moved {
			return err
		}
	}
	return fmt.Errorf("disk '%s' kept moving between VMs while it was being locked", diskID)
}
