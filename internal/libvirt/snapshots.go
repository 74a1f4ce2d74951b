package libvirt

import (
	"context"
	"errors"
	"fmt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"slices"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
)

// backupPollInterval is how often a running backup job is checked.
const backupPollInterval = 100 * time.Millisecond

// A snapshot is a full, independent copy of a disk's data at one moment,
// in a volume named by the snapshot CID, in the disk's format. It does
// not depend on the disk (deleting the disk keeps it), and restoring it
// is a plain copy back. Its metadata sits in a sidecar like a disk's.

// SnapshotDisk copies the disk's data now into a new volume snapCID.
// A disk no running VM holds is cloned by libvirt. A disk a running VM
// holds cannot be cloned (QEMU keeps a write lock on it, and its cache
// may hold writes not yet in the file), so QEMU itself copies it: a
// push-mode backup job of that one disk into the new volume, which gives
// the disk's contents at the instant the job began.
// DiskHolders lists our VMs that use the disk.
func (b *Backend) DiskHolders(ctx context.Context, diskCID string) ([]string, error) {
	d, err := b.ownedDisk(ctx, diskCID)
	if err != nil {
		return nil, fmt.Errorf("finding the VMs of disk '%s': %w", diskCID, err)
	}
	users, err := b.diskUsers(d, "")
	if err != nil {
		return nil, err
	}
	vms := make([]string, 0, len(users))
	for _, u := range users {
		vms = append(vms, u.VM)
	}
	slices.Sort(vms)
	return vms, nil
}

func (b *Backend) SnapshotDisk(ctx context.Context, diskCID, snapCID string, meta disk.Metadata) (err error) {
	d, err := b.ownedDisk(ctx, diskCID)
	if err != nil {
		return fmt.Errorf("snapshotting disk '%s': %w", diskCID, err)
	}
	// Only a volume this call made may be removed on failure.
	if _, err := b.LookupVolume(ctx, snapCID); !cpierr.IsNotFound(err) {
		return fmt.Errorf("snapshotting disk '%s': volume '%s' already exists or cannot be checked: %v", diskCID, snapCID, err)
	}
	// Creation record, ownership record, then the copy: a call killed
	// anywhere leaves the creation record for the sweep.
	finish, err := b.BeginCreate(ctx, snapCID)
	if err != nil {
		return fmt.Errorf("snapshotting disk '%s': %w", diskCID, err)
	}
	defer func() {
		if err != nil {
			b.UndoVolume(ctx, snapCID)
			b.UndoVolume(ctx, storage.MetaVolumeName(snapCID))
			if finishErr := finish(); finishErr != nil {
				b.log.Warn("could not remove the creation record; the sweep will", "snapshot", snapCID, "error", finishErr)
			}
		}
	}()
	started := time.Now()
	doc := storage.MetaDocument{Metadata: meta, SnapshotOf: diskCID, Owner: storage.NewOwner(storage.KindSnapshot)}
	if err := b.WriteMeta(ctx, snapCID, doc); err != nil {
		return fmt.Errorf("snapshotting disk '%s': storing metadata of snapshot '%s': %w", diskCID, snapCID, err)
	}
	method, err := b.copyDisk(ctx, d, snapCID)
	if err != nil {
		return fmt.Errorf("snapshotting disk '%s' into '%s': %w", diskCID, snapCID, err)
	}
	if err := finish(); err != nil {
		return fmt.Errorf("snapshotting disk '%s' into '%s': %w", diskCID, snapCID, err)
	}
	b.log.Info("snapshotted disk", "disk", diskCID, "snapshot", snapCID, "method", method,
		"seconds", fmt.Sprintf("%.2f", time.Since(started).Seconds()))
	return nil
}

// copyDisk makes snapCID a copy of d, through the running VM that holds
// it if there is one, and says which way it went.
func (b *Backend) copyDisk(ctx context.Context, d storage.Volume, snapCID string) (string, error) {
	users, err := b.diskUsers(d, "")
	if err != nil {
		return "", err
	}
	for _, u := range users {
		if !u.Live {
			continue
		}
		if b.containers() {
			return "", fmt.Errorf("disk '%s' is mounted in running container '%s': libvirt's %s driver has no backup job to copy it consistently; snapshot it detached or with the VM stopped: %w",
				d.CID, u.VM, b.profile.Driver, cpierr.ErrNotSupported)
		}
		err := b.backupRunningDisk(ctx, u.VM, d, snapCID)
		if !errors.Is(err, errDomainStopped) {
			return "backup job of VM " + u.VM, err
		}
		// It stopped before the job began: its disk is a plain file now.
		if err := b.DeleteVolumeIfExists(ctx, snapCID); err != nil {
			return "", err
		}
	}
	if err := b.cloneDisk(ctx, d, snapCID); err != nil {
		return "", err
	}
	return "volume clone", nil
}

// snapshotVolumeDoc is an empty volume like d named snapCID.
func snapshotVolumeDoc(d storage.Volume, snapCID string) libvirtxml.StorageVolume {
	return storage.ThinVolume(snapCID, d.Capacity, d.Format)
}

// cloneDisk copies a disk no QEMU has open (libvirt copies sparsely).
func (b *Backend) cloneDisk(ctx context.Context, d storage.Volume, snapCID string) error {
	if err := b.EnsureSpace(ctx, b.allocationOf(d)); err != nil {
		return err
	}
	_, err := b.CloneVolume(ctx, snapshotVolumeDoc(d, snapCID), d.Vol)
	return err
}

// allocationOf is how many bytes d occupies (0 when unknown: then only
// the copy itself can tell whether it fits).
func (b *Backend) allocationOf(d storage.Volume) uint64 {
	_, _, allocation, err := b.conn.StorageVolGetInfo(d.Vol)
	if err != nil {
		return 0
	}
	return allocation
}

// errDomainStopped: the VM stopped between finding it running and
// starting the backup job.
var errDomainStopped = errors.New("domain is not running")

// backupRunningDisk has QEMU copy d into a new volume snapCID. Only one
// backup job can run per domain: a per-VM lock makes parallel snapshots
// of its disks (each under its own disk lock) wait for one another.
func (b *Backend) backupRunningDisk(ctx context.Context, vmCID string, d storage.Volume, snapCID string) error {
	unlock, err := b.locks.Lock(ctx, "backup-"+vmCID)
	if err != nil {
		return err
	}
	defer unlock()
	dom, err := b.lookupOwnedDomain(vmCID)
	if err != nil {
		return err
	}
	running, err := b.domainIsRunning(dom)
	if err != nil {
		return err
	}
	if !running {
		return errDomainStopped
	}
	live, err := b.domainDefinition(dom, 0)
	if err != nil {
		return err
	}
	target, err := b.CreateVolume(ctx, snapshotVolumeDoc(d, snapCID))
	if err != nil {
		return err
	}
	targetPath, err := b.VolumePath(target)
	if err != nil {
		return err
	}
	doc, err := xmldef.Backup(live, d.CID, d.Path, d.Format, targetPath)
	if err != nil {
		return err
	}
	if err := b.conn.DomainBackupBegin(dom, doc, golibvirt.OptString{}, golibvirt.DomainBackupBeginReuseExternal); err != nil {
		if running, stateErr := b.domainIsRunning(dom); stateErr == nil && !running {
			return errDomainStopped
		}
		return fmt.Errorf("starting backup job of disk '%s' in domain '%s': %w", d.CID, dom.Name, host.Classify(err))
	}
	return b.waitForBackup(ctx, dom, d.CID)
}

// waitForBackup polls until the domain's backup job has ended, then reads
// how it ended. If ctx ends first, the job is aborted.
func (b *Backend) waitForBackup(ctx context.Context, dom golibvirt.Domain, diskCID string) error {
	for {
		jobType, _, err := b.conn.DomainGetJobStats(dom, 0)
		if err != nil {
			return fmt.Errorf("reading backup job of domain '%s': %w", dom.Name, host.Classify(err))
		}
		if golibvirt.DomainJobType(jobType) == golibvirt.DomainJobNone {
			return b.backupOutcome(dom, diskCID)
		}
		select {
		case <-ctx.Done():
			if err := b.conn.DomainAbortJob(dom); err != nil {
				b.log.Warn("could not abort backup job", "vm", dom.Name, "error", err)
			}
			return fmt.Errorf("waiting for backup of disk '%s' in domain '%s': %w", diskCID, dom.Name, ctx.Err())
		case <-time.After(backupPollInterval):
		}
	}
}

// backupOutcome reads the finished job's result.
func (b *Backend) backupOutcome(dom golibvirt.Domain, diskCID string) error {
	jobType, params, err := b.conn.DomainGetJobStats(dom, golibvirt.DomainJobStatsCompleted)
	if err != nil {
		return fmt.Errorf("reading result of backup job of domain '%s': %w", dom.Name, host.Classify(err))
	}
	if golibvirt.DomainJobType(jobType) == golibvirt.DomainJobCompleted {
		return nil
	}
	msg := "no reason given"
	for _, p := range params {
		if s, ok := p.Value.I.(string); ok && p.Field == golibvirt.DomainJobErrmsg {
			msg = s
		}
	}
	if running, stateErr := b.domainIsRunning(dom); stateErr == nil && !running {
		msg += "; the domain stopped during the backup"
	}
	return fmt.Errorf("backup job of disk '%s' in domain '%s' ended with state %d: %s", diskCID, dom.Name, jobType, msg)
}

// DeleteSnapshot removes the snapshot volume and its metadata. A missing
// snapshot is ErrNotFound (a stray sidecar is removed on the way); so is
// a volume without our ownership record, which stays.
func (b *Backend) DeleteSnapshot(ctx context.Context, snapCID string) error {
	vol, err := b.LookupVolume(ctx, snapCID)
	if err != nil {
		if cpierr.IsNotFound(err) {
			_ = b.DeleteMeta(ctx, snapCID)
		}
		return fmt.Errorf("deleting snapshot '%s': %w", snapCID, err)
	}
	if err := b.RequireOwned(ctx, snapCID); err != nil {
		return fmt.Errorf("deleting snapshot '%s': %w", snapCID, err)
	}
	if err := b.DeleteVolume(vol); err != nil {
		return fmt.Errorf("deleting snapshot '%s': %w", snapCID, err)
	}
	if err := b.DeleteMeta(ctx, snapCID); err != nil {
		return fmt.Errorf("deleting snapshot '%s': data deleted, but %w", snapCID, err)
	}
	b.log.Info("deleted snapshot", "snapshot", snapCID)
	return nil
}
