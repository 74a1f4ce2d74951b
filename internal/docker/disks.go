package docker

// Persistent disks are sparse ext4 filesystem images in
// <store_dir>/disks/<cid>.img, so their size is enforced by the filesystem
// itself (measured on this kind of host: overlay2 on ext4 refuses
// --storage-opt size, the local volume driver refuses a size ("no quota
// support") and cannot loop-mount; a tmpfs volume is sized but lives in
// RAM). Attaching loop-mounts the image into the VM's shared directory
// (mounts.go); the hint is the path the warden agent bind-mounts.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/atomicfile"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

func (r *Runtime) diskImage(cid string) string {
	return filepath.Join(r.cfg.StoreDir, "disks", cid+".img")
}
func (r *Runtime) diskMetaFile(cid string) string {
	return filepath.Join(r.cfg.StoreDir, "disks", cid+".json")
}
func (r *Runtime) snapshotImage(cid string) string {
	return filepath.Join(r.cfg.StoreDir, "snapshots", cid+".img")
}
func (r *Runtime) diskMount(vmCID, diskCID string) string {
	return filepath.Join(r.vmDir(vmCID), "disks", diskCID)
}

// requireLocal refuses what needs a disk's bytes when the daemon is on
// another machine: disk images and their mounts live on the Docker host,
// a remote host's disk volumes are beyond the API's reach.
func (r *Runtime) requireLocal(what string) error {
	if r.local {
		return nil
	}
	return fmt.Errorf("Docker runtime: %s needs the CPI on the Docker host (a unix:// host), not '%s': %w", what, r.cfg.Host, cpierr.ErrNotSupported)
}

// CreateDisk makes the disk as an ext4 filesystem image. Its format
// (qcow2/raw, a VM disk's) has no meaning for a container and is not read.
func (r *Runtime) CreateDisk(ctx context.Context, spec disk.Spec) error {
	return r.createDisk(ctx, spec.CID, spec.SizeMiB)
}

// createDisk makes a sparse ext4 image of sizeMiB. On failure nothing is left.
func (r *Runtime) createDisk(ctx context.Context, cid string, sizeMiB int) error {
	if err := disk.CheckSizeMiB("disk size", sizeMiB); err != nil {
		return err
	}
	if !r.local {
		return r.createVolumeDisk(ctx, cid, sizeMiB)
	}
	img := r.diskImage(cid)
	if err := os.MkdirAll(filepath.Dir(img), 0o700); err != nil {
		return fmt.Errorf("creating disk '%s': %w", cid, err)
	}
	f, err := os.OpenFile(img, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating disk '%s': %w", cid, err)
	}
	err = f.Truncate(int64(sizeMiB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// -m 0: no blocks reserved for root, the disk holds all it says.
		err = run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", img)
	}
	if err != nil {
		os.Remove(img)
		return noSpace(fmt.Errorf("creating disk '%s' of %d MiB: %w", cid, sizeMiB, err))
	}
	r.log.Info("disk created", "cid", cid, "size_mib", sizeMiB)
	return nil
}

// noSpace marks a failure for want of host space as cpierr.ErrNoSpace.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(strings.ToLower(err.Error()), "no space left") {
		return fmt.Errorf("%w: %w", cpierr.ErrNoSpace, err)
	}
	return err
}

// statDisk is ErrNotFound when the disk's image is not there.
func (r *Runtime) statDisk(cid string) (os.FileInfo, error) {
	st, err := os.Stat(r.diskImage(cid))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("disk '%s': %w", cid, cpierr.ErrNotFound)
	}
	return st, err
}

// findDisk is ErrNotFound when the disk is not there: its image, or on a
// remote host its volume.
func (r *Runtime) findDisk(ctx context.Context, cid string) error {
	if !r.local {
		return r.findVolumeDisk(ctx, cid)
	}
	_, err := r.statDisk(cid)
	return err
}

// HasDisk tells whether the disk exists.
func (r *Runtime) HasDisk(ctx context.Context, cid string) (bool, error) {
	err := r.findDisk(ctx, cid)
	if errors.Is(err, cpierr.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DeleteDisk removes the image and its metadata; ErrInUse while attached.
func (r *Runtime) DeleteDisk(ctx context.Context, cid string) error {
	if !r.local {
		return r.deleteVolumeDisk(ctx, cid)
	}
	if _, err := r.statDisk(cid); err != nil {
		return err
	}
	if err := r.refuseAttached(ctx, cid); err != nil {
		return err
	}
	if err := os.Remove(r.diskImage(cid)); err != nil {
		return fmt.Errorf("deleting disk '%s': %w", cid, err)
	}
	if err := atomicfile.Remove(r.diskMetaFile(cid)); err != nil {
		return fmt.Errorf("deleting metadata of disk '%s': %w", cid, err)
	}
	r.log.Info("disk deleted", "cid", cid)
	return nil
}

// refuseAttached is ErrInUse, naming the VM, while the disk is attached.
func (r *Runtime) refuseAttached(ctx context.Context, cid string) error {
	holders, err := r.DiskHolders(ctx, cid)
	if err != nil {
		return err
	}
	if len(holders) > 0 {
		return fmt.Errorf("disk '%s' is attached to VM '%s': %w", cid, holders[0], cpierr.ErrInUse)
	}
	return nil
}

// DiskHolders lists the VMs the disk is attached to (at most one).
func (r *Runtime) DiskHolders(ctx context.Context, diskCID string) ([]string, error) {
	if !r.local {
		return r.volumeHolders(ctx, diskCID)
	}
	matches, err := filepath.Glob(filepath.Join(r.cfg.StoreDir, "vms", "*", "disks", diskCID))
	if err != nil {
		return nil, err
	}
	holders := []string{}
	for _, m := range matches {
		holders = append(holders, filepath.Base(filepath.Dir(filepath.Dir(m))))
	}
	return holders, nil
}

// AttachDisk mounts the disk into the running container without touching
// the container (on a remote host: recreates it, volumedisks.go), and
// returns the hint: the path inside the container the warden agent
// bind-mounts. Attaching it again to the same VM returns the same hint;
// ErrInUse when another VM has it.
func (r *Runtime) AttachDisk(ctx context.Context, vmCID, diskCID string) (disk.Hint, error) {
	if !r.local {
		return r.attachVolumeDisk(ctx, vmCID, diskCID)
	}
	hint := disk.Hint{ID: diskCID, Path: DiskHintDir + "/" + diskCID}
	if _, err := r.inspectVM(ctx, vmCID); err != nil {
		return disk.Hint{}, err
	}
	if _, err := r.statDisk(diskCID); err != nil {
		return disk.Hint{}, err
	}
	holders, err := r.DiskHolders(ctx, diskCID)
	if err != nil {
		return disk.Hint{}, err
	}
	for _, h := range holders {
		if h != vmCID {
			return disk.Hint{}, fmt.Errorf("attaching disk '%s' to VM '%s': attached to VM '%s': %w", diskCID, vmCID, h, cpierr.ErrInUse)
		}
	}
	if len(holders) == 0 {
		if free, err := waitLoopFree(r.diskImage(diskCID)); err != nil || !free {
			return disk.Hint{}, fmt.Errorf("attaching disk '%s' to VM '%s': its image is still mounted somewhere: %w", diskCID, vmCID, cpierr.ErrInUse)
		}
	}
	if err := r.mountDisk(vmCID, diskCID); err != nil {
		return disk.Hint{}, fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	r.log.Info("disk attached", "vm", vmCID, "disk", diskCID, "hint", hint.Path)
	return hint, nil
}

// mountDisk records the attachment (the mount point directory) and
// mounts the image there unless it already is.
func (r *Runtime) mountDisk(vmCID, diskCID string) error {
	dir := r.diskMount(vmCID, diskCID)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	mounted, err := isMountpoint(dir)
	if err != nil || mounted {
		return err
	}
	if err := loopMount(r.diskImage(diskCID), dir); err != nil {
		os.Remove(dir)
		return err
	}
	return nil
}

// DetachDisk unmounts the disk from the VM. ErrNotAttached when it is not
// attached; ErrInUse when a mount of it survives inside the container
// (the agent has not unmounted /var/vcap/store): attaching it elsewhere
// then would mount one filesystem twice.
func (r *Runtime) DetachDisk(ctx context.Context, vmCID, diskCID string) error {
	if !r.local {
		return r.detachVolumeDisk(ctx, vmCID, diskCID)
	}
	c, err := r.inspectVM(ctx, vmCID)
	if err != nil {
		return err
	}
	if _, err := os.Stat(r.diskMount(vmCID, diskCID)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disk '%s' on VM '%s': %w", diskCID, vmCID, cpierr.ErrNotAttached)
	}
	if err := r.checkGuestLetGo(c.State.Pid, vmCID, diskCID); err != nil {
		return err
	}
	if err := r.unmountDisk(vmCID, diskCID); err != nil {
		return err
	}
	r.log.Info("disk detached", "vm", vmCID, "disk", diskCID)
	return nil
}

// checkGuestLetGo refuses (ErrInUse) while the container's mount
// namespace has the disk mounted anywhere but at its hint, before anything
// is unmounted, so a refused detach changes nothing.
func (r *Runtime) checkGuestLetGo(pid int, vmCID, diskCID string) error {
	if pid == 0 {
		return nil // not running: no guest mounts
	}
	dev, err := loopDev(r.diskImage(diskCID))
	if err != nil || dev == "" {
		return err
	}
	n, err := mountsOf(pid, dev)
	if err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': reading the container's mounts: %w", diskCID, vmCID, err)
	}
	if n > 1 {
		return fmt.Errorf("detaching disk '%s' from VM '%s': the guest has it mounted %d times beyond its hint (unmount /var/vcap/store first): %w", diskCID, vmCID, n-1, cpierr.ErrInUse)
	}
	return nil
}

func (r *Runtime) unmountDisk(vmCID, diskCID string) error {
	dir := r.diskMount(vmCID, diskCID)
	if err := unmount(dir); err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	free, err := waitLoopFree(r.diskImage(diskCID))
	if err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	if !free {
		return fmt.Errorf("detaching disk '%s' from VM '%s': still mounted inside the container (unmount /var/vcap/store first): %w", diskCID, vmCID, cpierr.ErrInUse)
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	return nil
}

// AttachedDisks lists the persistent disks attached to the VM.
func (r *Runtime) AttachedDisks(ctx context.Context, vmCID string) ([]string, error) {
	c, err := r.inspectVM(ctx, vmCID)
	if err != nil {
		return nil, err
	}
	if !r.local {
		return volumeDisksOf(c), nil
	}
	return r.attachedDisks(vmCID)
}

func (r *Runtime) attachedDisks(vmCID string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(r.vmDir(vmCID), "disks"))
	if errors.Is(err, os.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// ensureDiskMounts makes the VM's shared directory and its disks' mounts
// again where they are missing (after a host reboot).
func (r *Runtime) ensureDiskMounts(vmCID string) error {
	if !r.local {
		return nil
	}
	if err := sharedDir(filepath.Join(r.vmDir(vmCID), "disks")); err != nil {
		return err
	}
	disks, err := r.attachedDisks(vmCID)
	if err != nil {
		return err
	}
	for _, d := range disks {
		if err := r.mountDisk(vmCID, d); err != nil {
			return fmt.Errorf("mounting disk '%s': %w", d, err)
		}
	}
	return nil
}

// ResizeDisk grows a detached disk: the image, then its filesystem.
// Shrinking is refused; ErrInUse while attached.
func (r *Runtime) ResizeDisk(ctx context.Context, cid string, sizeMiB int) error {
	if err := r.requireLocal("resizing disk '" + cid + "'"); err != nil {
		return err
	}
	st, err := r.statDisk(cid)
	if err != nil {
		return err
	}
	if err := disk.CheckSizeMiB("disk size", sizeMiB); err != nil {
		return err
	}
	if err := r.refuseAttached(ctx, cid); err != nil {
		return fmt.Errorf("resizing: %w", err)
	}
	newSize := int64(sizeMiB) << 20
	switch {
	case newSize < st.Size():
		return fmt.Errorf("resizing disk '%s': %d MiB is smaller than its %d MiB; disks only grow", cid, sizeMiB, st.Size()>>20)
	case newSize == st.Size():
		return nil
	}
	img := r.diskImage(cid)
	if err := os.Truncate(img, newSize); err != nil {
		return noSpace(fmt.Errorf("resizing disk '%s': %w", cid, err))
	}
	// resize2fs wants a freshly checked filesystem.
	if err := run("e2fsck", "-f", "-p", img); err != nil {
		return fmt.Errorf("resizing disk '%s': %w", cid, err)
	}
	if err := run("resize2fs", img); err != nil {
		return noSpace(fmt.Errorf("resizing disk '%s': %w", cid, err))
	}
	r.log.Info("disk resized", "cid", cid, "size_mib", sizeMiB)
	return nil
}

// SetDiskMetadata stores the metadata beside the image.
func (r *Runtime) SetDiskMetadata(ctx context.Context, cid string, meta disk.Metadata) error {
	if err := r.findDisk(ctx, cid); err != nil {
		return err
	}
	return writeJSON(r.diskMetaFile(cid), meta)
}

// GetDiskMetadata reads it (empty when none was set).
func (r *Runtime) GetDiskMetadata(ctx context.Context, cid string) (disk.Metadata, error) {
	if err := r.findDisk(ctx, cid); err != nil {
		return nil, err
	}
	meta := disk.Metadata{}
	if err := readJSON(r.diskMetaFile(cid), &meta); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return meta, nil
}

// SnapshotDisk copies the disk's image (sparse) under snapCID. An
// attached disk's filesystem is frozen during the copy so the copy is
// consistent.
func (r *Runtime) SnapshotDisk(ctx context.Context, diskCID, snapCID string, meta disk.Metadata) error {
	if err := r.requireLocal("snapshotting disk '" + diskCID + "'"); err != nil {
		return err
	}
	if _, err := r.statDisk(diskCID); err != nil {
		return err
	}
	dst := r.snapshotImage(snapCID)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	holders, err := r.DiskHolders(ctx, diskCID)
	if err != nil {
		return err
	}
	copyIt := func() error { return sparseCopy(r.diskImage(diskCID), dst) }
	if len(holders) > 0 {
		err = frozen(r.diskMount(holders[0], diskCID), copyIt)
	} else {
		err = copyIt()
	}
	if err == nil {
		err = writeJSON(filepath.Join(filepath.Dir(dst), snapCID+".json"), map[string]any{"disk": diskCID, "metadata": meta})
	}
	if err != nil {
		os.Remove(dst)
		return noSpace(fmt.Errorf("snapshotting disk '%s' as '%s': %w", diskCID, snapCID, err))
	}
	r.log.Info("disk snapshotted", "disk", diskCID, "snapshot", snapCID)
	return nil
}

// SnapshotPath is where a snapshot's image is (to restore or inspect it).
func (r *Runtime) SnapshotPath(snapCID string) string { return r.snapshotImage(snapCID) }

// DeleteSnapshot removes it; ErrNotFound when it is not there.
func (r *Runtime) DeleteSnapshot(ctx context.Context, snapCID string) error {
	img := r.snapshotImage(snapCID)
	if err := os.Remove(img); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("snapshot '%s': %w", snapCID, cpierr.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("deleting snapshot '%s': %w", snapCID, err)
	}
	atomicfile.Remove(filepath.Join(filepath.Dir(img), snapCID+".json"))
	return nil
}
