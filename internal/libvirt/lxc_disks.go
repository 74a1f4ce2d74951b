package libvirt

// Persistent disks of containers: a raw pool volume holding an ext4
// filesystem, made by mkfs.ext4 on this machine (no library writes ext4),
// which libvirt's lxc driver loop-mounts at the hint path
// /warden-cpi-dev/<disk-cid> in the container (<filesystem type='file'>
// with a loop driver). The lxc driver cannot hot-plug a filesystem
// ("unsupported configuration: device type 'filesystem' cannot be
// attached"), and its containers' mounts are private, so a mount made on
// the host later never reaches them: attach and detach change the
// persistent definition and, when the container runs, restart it
// (graceful stop, up to reboot_timeout, then start). The container's root
// filesystem layer is kept, so its state survives; its processes restart.

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/faults"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// createContainerDisk makes a raw volume of spec's size with an empty
// ext4 filesystem on it. On failure the volume is removed.
func (b *Backend) createContainerDisk(ctx context.Context, spec disk.Spec) error {
	if err := b.requireLocalHost("creating disk '" + spec.CID + "'"); err != nil {
		return err
	}
	if spec.SizeMiB <= 0 {
		return fmt.Errorf("creating disk '%s': size must be a positive number of MiB, got %d", spec.CID, spec.SizeMiB)
	}
	size := uint64(spec.SizeMiB) * storage.MiB
	if err := b.EnsureSpace(ctx, size); err != nil {
		return fmt.Errorf("creating disk '%s' of %d MiB: %w", spec.CID, spec.SizeMiB, err)
	}
	finish, err := b.beginDisk(ctx, spec.CID)
	if err != nil {
		return err
	}
	vol, err := b.CreateVolume(ctx, storage.ThinVolume(spec.CID, size, disk.FormatRaw))
	if err != nil {
		b.undoDisk(ctx, spec.CID, finish)
		return fmt.Errorf("creating disk '%s' of %d MiB: %w", spec.CID, spec.SizeMiB, err)
	}
	path, err := b.VolumePath(vol)
	if err == nil {
		err = loopablePath(path)
	}
	if err == nil {
		err = runTool("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", path)
	}
	if err != nil {
		b.undoDisk(ctx, spec.CID, finish)
		return fmt.Errorf("creating disk '%s': making its ext4 filesystem: %w", spec.CID, err)
	}
	if err := finish(); err != nil {
		b.undoDisk(ctx, spec.CID, finish)
		return fmt.Errorf("creating disk '%s': %w", spec.CID, err)
	}
	b.log.Info("created disk", "disk", spec.CID, "size_mib", spec.SizeMiB, "format", "raw ext4")
	return nil
}

// loopNameMax is the kernel's LO_NAME_SIZE less its NUL: libvirt's lxc
// driver copies the image path into the loop device's name and refuses a
// longer one at container start ("Unable to set backing file").
const loopNameMax = 63

// loopablePath refuses a disk image whose path libvirt cannot loop-mount.
func loopablePath(path string) error {
	if len(path) > loopNameMax {
		return fmt.Errorf("image path '%s' is %d bytes long; libvirt's lxc driver loop-mounts only paths of at most %d bytes (the kernel's loop device name): use a shorter pool_path",
			path, len(path), loopNameMax)
	}
	return nil
}

// growContainerFilesystem grows the ext4 filesystem of a detached disk
// whose volume was just grown.
func growContainerFilesystem(d storage.Volume) error {
	// resize2fs refuses an unchecked filesystem; -p repairs only what is
	// safe without asking (exit 1: errors corrected).
	if err := runTool("e2fsck", "-f", "-p", d.Path); err != nil && !isExit(err, 1) {
		return fmt.Errorf("checking the filesystem of disk '%s': %w", d.CID, err)
	}
	if err := runTool("resize2fs", d.Path); err != nil {
		return fmt.Errorf("growing the filesystem of disk '%s': %w", d.CID, err)
	}
	return nil
}

// runTool runs one of e2fsprogs' tools: ext4 has no library here.
func runTool(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func isExit(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// diskDir is where a disk is mounted in the container; the fault puts it
// elsewhere than its hint says.
func (b *Backend) diskDir(diskCID string) string {
	if faults.Active(faults.WrongDiskHint) {
		return b.profile.DiskHintPath(diskCID + "-wrong")
	}
	return b.profile.DiskHintPath(diskCID)
}

// containerDiskFilesystems are the filesystems of the disks attached at
// creation.
func (b *Backend) containerDiskFilesystems(ctx context.Context, disks []vm.AttachedDisk) ([]libvirtxml.DomainFilesystem, error) {
	out := make([]libvirtxml.DomainFilesystem, 0, len(disks))
	for _, d := range disks {
		v, err := b.ownedDisk(ctx, d.DiskCID)
		if err != nil {
			return nil, fmt.Errorf("finding persistent disk '%s': %w", d.DiskCID, err)
		}
		out = append(out, xmldef.DiskFilesystem(v.Path, b.diskDir(d.DiskCID)))
	}
	return out, nil
}

// hasFilesystem tells whether def mounts the image at path.
func hasFilesystem(def *libvirtxml.Domain, imagePath string) bool {
	return diskFilesystemIndex(def, imagePath, "") >= 0
}

// diskFilesystemIndex is the index of the filesystem of image path (or,
// when path is unknown, mounted at dir); -1 when there is none.
func diskFilesystemIndex(def *libvirtxml.Domain, imagePath, dir string) int {
	for i, fs := range filesystemsOf(def) {
		img := xmldef.FilesystemImage(fs)
		if img == "" {
			continue
		}
		if (imagePath != "" && img == imagePath) || (dir != "" && fs.Target != nil && fs.Target.Dir == dir) {
			return i
		}
	}
	return -1
}

// attachContainerDisk adds the disk's filesystem to the container's
// definition and restarts a running container so that it gets it.
func (b *Backend) attachContainerDisk(ctx context.Context, vmCID, diskCID string) (disk.Hint, error) {
	fail := func(err error) (disk.Hint, error) {
		return disk.Hint{}, fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	dom, err := b.lookupOwnedDomain(vmCID)
	if err != nil {
		return fail(err)
	}
	d, err := b.ownedDisk(ctx, diskCID)
	if err != nil {
		return fail(err)
	}
	others, err := b.diskUsers(d, vmCID)
	if err != nil {
		return fail(err)
	}
	if len(others) > 0 {
		return fail(fmt.Errorf("it is %s: %w", describeUsers(others), cpierr.ErrInUse))
	}
	hint := b.profile.PersistentHint(diskCID, "")
	dd, err := b.readDomainDisks(dom)
	if err != nil {
		return fail(err)
	}
	inConfig, inLive := hasFilesystem(dd.Config, d.Path), hasFilesystem(dd.Live, d.Path)
	if inConfig && (!dd.Running || inLive) {
		return hint, nil // attached already
	}
	if !inConfig {
		dd.Config.Devices.Filesystems = append(dd.Config.Devices.Filesystems, xmldef.DiskFilesystem(d.Path, b.diskDir(diskCID)))
		if err := b.redefine(*dd.Config); err != nil {
			return fail(err)
		}
	}
	if dd.Running {
		if err := b.restartContainer(ctx, dom); err != nil {
			return fail(fmt.Errorf("the disk is in the definition; restarting the container to mount it (libvirt's %s driver cannot hot-plug a filesystem): %w", b.profile.Driver, err))
		}
	}
	b.log.Info("attached disk", "disk", diskCID, "vm", vmCID, "hint_path", hint.Path, "restarted", dd.Running)
	return hint, nil
}

// detachContainerDisk removes the disk's filesystem from the definition
// and restarts a running container so that it lets go of it.
func (b *Backend) detachContainerDisk(ctx context.Context, vmCID, diskCID string) error {
	fail := func(err error) error {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	dom, err := b.lookupOwnedDomain(vmCID)
	if err != nil {
		return fail(err)
	}
	imagePath := b.diskPathIfExists(ctx, diskCID)
	dd, err := b.readDomainDisks(dom)
	if err != nil {
		return fail(err)
	}
	dir := b.profile.DiskHintPath(diskCID)
	i, live := diskFilesystemIndex(dd.Config, imagePath, dir), diskFilesystemIndex(dd.Live, imagePath, dir)
	if i < 0 && live < 0 {
		return fail(cpierr.ErrNotAttached)
	}
	if i >= 0 {
		fss := dd.Config.Devices.Filesystems
		dd.Config.Devices.Filesystems = append(fss[:i:i], fss[i+1:]...)
		if err := b.redefine(*dd.Config); err != nil {
			return fail(err)
		}
	}
	if dd.Running && live >= 0 {
		if err := b.restartContainer(ctx, dom); err != nil {
			return fail(fmt.Errorf("the disk is out of the definition; restarting the container to unmount it: %w", err))
		}
	}
	b.log.Info("detached disk", "disk", diskCID, "vm", vmCID, "restarted", dd.Running && live >= 0)
	return nil
}

// attachedContainerDisks are the disk CIDs of the image filesystems under
// the hint directory, in the definition or still in the running container.
func (b *Backend) attachedContainerDisks(vmCID string) ([]string, error) {
	dom, err := b.lookupOwnedDomain(vmCID)
	if err != nil {
		return nil, fmt.Errorf("listing disks of VM '%s': %w", vmCID, err)
	}
	dd, err := b.readDomainDisks(dom)
	if err != nil {
		return nil, fmt.Errorf("listing disks of VM '%s': %w", vmCID, err)
	}
	seen := map[string]bool{}
	var cids []string
	for _, fs := range append(filesystemsOf(dd.Config), filesystemsOf(dd.Live)...) {
		img := xmldef.FilesystemImage(fs)
		if img == "" || seen[path.Base(img)] {
			continue
		}
		seen[path.Base(img)] = true
		cids = append(cids, path.Base(img)) // the volume is named by the disk CID
	}
	return cids, nil
}

// redefine replaces the domain's persistent definition.
func (b *Backend) redefine(def libvirtxml.Domain) error {
	doc, err := def.Marshal()
	if err != nil {
		return fmt.Errorf("building XML of domain '%s': %w", def.Name, err)
	}
	if _, err := b.conn.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate); err != nil {
		return fmt.Errorf("redefining domain '%s': %w", def.Name, host.Classify(err))
	}
	return nil
}

// restartContainer stops a container (gracefully, then by force) and
// starts it from its persistent definition.
func (b *Backend) restartContainer(ctx context.Context, dom golibvirt.Domain) error {
	if err := b.RebootVM(ctx, dom.Name); err != nil {
		return err
	}
	return nil
}
