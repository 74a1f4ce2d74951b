package docker

// Persistent disks on a tcp:// Docker host. The CPI is not on that host,
// so it can neither make nor loop-mount an image file there (disks.go): a
// disk is a Docker volume of that host named "<name prefix><disk-cid>",
// labelled ours with its size, and attach and detach recreate the
// container with the volume mounted at the hint or without it
// (recreate.go). The local volume driver sizes a volume only where
// dockerd's storage has quotas (xfs with pquota); elsewhere the volume is
// made unsized and the log says so. Resize and snapshot need the disk's
// bytes, which the API does not reach: NotSupported (for a resize the
// director then copies the data to a new disk through the agent).

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/atomicfile"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// LabelSizeMiB on a disk volume is the size create_disk asked for.
const LabelSizeMiB = "io.bosh-libvirt-cpi.size_mib"

func (r *Runtime) createVolumeDisk(ctx context.Context, cid string, sizeMiB int) error {
	labels := r.labels("disk", cid)
	labels[LabelSizeMiB] = strconv.Itoa(sizeMiB)
	opts := volume.CreateOptions{Name: r.name(cid), Labels: labels, DriverOpts: map[string]string{"size": fmt.Sprintf("%dm", sizeMiB)}}
	_, err := r.api.VolumeCreate(ctx, opts)
	if err != nil && strings.Contains(err.Error(), "no quota support") {
		r.log.Warn("the Docker host's volume storage has no quotas: the disk's size is recorded, not enforced",
			"cid", cid, "size_mib", sizeMiB, "host", r.cfg.Host)
		opts.DriverOpts = nil
		_, err = r.api.VolumeCreate(ctx, opts)
	}
	if err != nil {
		return r.fail(err, "creating disk '%s' as volume '%s' on '%s'", cid, opts.Name, r.cfg.Host)
	}
	r.log.Info("disk created", "cid", cid, "size_mib", sizeMiB, "volume", opts.Name, "host", r.cfg.Host)
	return nil
}

// findVolumeDisk is ErrNotFound unless the disk's volume is there and ours.
func (r *Runtime) findVolumeDisk(ctx context.Context, cid string) error {
	v, err := r.api.VolumeInspect(ctx, r.name(cid))
	if err != nil {
		return r.fail(err, "finding disk '%s' (volume '%s')", cid, r.name(cid))
	}
	if !ours(v.Labels) || v.Labels[LabelKind] != "disk" || v.Labels[LabelCID] != cid {
		return fmt.Errorf("disk '%s': volume '%s' is not one of ours: %w", cid, v.Name, cpierr.ErrNotFound)
	}
	return nil
}

// volumeHolders lists the VMs whose containers mount the disk's volume.
func (r *Runtime) volumeHolders(ctx context.Context, diskCID string) ([]string, error) {
	f := filters.NewArgs(filters.Arg("volume", r.name(diskCID)), filters.Arg("label", LabelOwner+"="+OwnerValue))
	cs, err := r.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, r.fail(err, "listing the containers of disk '%s'", diskCID)
	}
	holders := []string{}
	for _, c := range cs {
		if cid := c.Labels[LabelCID]; c.Labels[LabelKind] == "vm" && !slices.Contains(holders, cid) {
			holders = append(holders, cid)
		}
	}
	return holders, nil
}

func (r *Runtime) deleteVolumeDisk(ctx context.Context, cid string) error {
	if err := r.findVolumeDisk(ctx, cid); err != nil {
		return err
	}
	if err := r.refuseAttached(ctx, cid); err != nil {
		return err
	}
	if err := r.api.VolumeRemove(ctx, r.name(cid), false); err != nil {
		return r.fail(err, "deleting disk '%s' (volume '%s')", cid, r.name(cid))
	}
	if err := atomicfile.Remove(r.diskMetaFile(cid)); err != nil {
		return fmt.Errorf("deleting metadata of disk '%s': %w", cid, err)
	}
	r.log.Info("disk deleted", "cid", cid, "volume", r.name(cid))
	return nil
}

func (r *Runtime) attachVolumeDisk(ctx context.Context, vmCID, diskCID string) (disk.Hint, error) {
	hint := disk.Hint{ID: diskCID, Path: DiskHintDir + "/" + diskCID}
	c, err := r.inspectVM(ctx, vmCID)
	if err != nil {
		return disk.Hint{}, err
	}
	if err := r.checkVolumeFree(ctx, vmCID, diskCID); err != nil {
		return disk.Hint{}, err
	}
	if slices.Contains(volumeDisksOf(c), diskCID) {
		return hint, nil
	}
	m := r.volumeDiskMount(diskCID)
	if err := r.recreate(ctx, vmCID, "attaching disk "+diskCID, func(ms []mount.Mount) []mount.Mount { return append(ms, m) }); err != nil {
		return disk.Hint{}, fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	r.log.Info("disk attached", "vm", vmCID, "disk", diskCID, "hint", hint.Path)
	return hint, nil
}

// checkVolumeFree: the disk exists and no other VM has it.
func (r *Runtime) checkVolumeFree(ctx context.Context, vmCID, diskCID string) error {
	if err := r.findVolumeDisk(ctx, diskCID); err != nil {
		return err
	}
	holders, err := r.volumeHolders(ctx, diskCID)
	if err != nil {
		return err
	}
	for _, h := range holders {
		if h != vmCID {
			return fmt.Errorf("attaching disk '%s' to VM '%s': attached to VM '%s': %w", diskCID, vmCID, h, cpierr.ErrInUse)
		}
	}
	return nil
}

func (r *Runtime) detachVolumeDisk(ctx context.Context, vmCID, diskCID string) error {
	c, err := r.inspectVM(ctx, vmCID)
	if err != nil {
		return err
	}
	if !slices.Contains(volumeDisksOf(c), diskCID) {
		return fmt.Errorf("disk '%s' on VM '%s': %w", diskCID, vmCID, cpierr.ErrNotAttached)
	}
	target := DiskHintDir + "/" + diskCID
	without := func(ms []mount.Mount) []mount.Mount {
		return slices.DeleteFunc(ms, func(m mount.Mount) bool { return m.Type == mount.TypeVolume && m.Target == target })
	}
	if err := r.recreate(ctx, vmCID, "detaching disk "+diskCID, without); err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	r.log.Info("disk detached", "vm", vmCID, "disk", diskCID)
	return nil
}

// volumeDiskMount mounts the disk's volume at its hint. NoCopy: the
// image's content at that path (none) is never copied into a disk.
func (r *Runtime) volumeDiskMount(diskCID string) mount.Mount {
	return mount.Mount{Type: mount.TypeVolume, Source: r.name(diskCID), Target: DiskHintDir + "/" + diskCID,
		VolumeOptions: &mount.VolumeOptions{NoCopy: true}}
}

// volumeDisksOf lists the disks the container was made with.
func volumeDisksOf(c container.InspectResponse) []string {
	out := []string{}
	if c.HostConfig == nil {
		return out
	}
	for _, m := range c.HostConfig.Mounts {
		if cid, ok := strings.CutPrefix(m.Target, DiskHintDir+"/"); ok && m.Type == mount.TypeVolume {
			out = append(out, cid)
		}
	}
	return out
}

// volumeDiskMountsAtCreation mounts the disks create_vm names into the new
// container (no recreation: it has not started).
func (r *Runtime) volumeDiskMountsAtCreation(ctx context.Context, vmCID string, disks []string) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, d := range disks {
		if err := r.checkVolumeFree(ctx, vmCID, d); err != nil {
			return nil, err
		}
		out = append(out, r.volumeDiskMount(d))
	}
	return out, nil
}
