package docker

// On a tcp:// host a mount cannot be added to or removed from a running
// container through the API, so attach_disk and detach_disk there replace
// the container by one made from the same configuration with the disk's
// volume mounted or not, as the Docker and Warden CPIs do everywhere (here
// only where the CPI is not on the Docker host; see volumedisks.go).
//
// Kill safety: the old container is first renamed "<name>.prev" and only
// removed once the new one runs. A call killed in between leaves
// "<name>.prev"; the next call that looks the VM up (settle) removes the
// unfinished new container and puts the old one back under its name,
// running, so the VM is as before the killed call. Recreation and settle
// hold the VM's lock, so a settle never undoes a recreation under way.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/lock"
)

// prevSuffix names a container being replaced.
const prevSuffix = ".prev"

func (r *Runtime) lockVM(ctx context.Context, cid string) (func(), error) {
	release, err := lock.NewDir(filepath.Join(r.cfg.StoreDir, "locks")).Lock(ctx, "vm-"+cid)
	if err != nil {
		return nil, fmt.Errorf("VM '%s': %w", cid, err)
	}
	return release, nil
}

// recreate replaces the VM's container by one with the same image,
// command, labels, limits, networks (static IPs, MACs), ephemeral volume
// and agent settings, and the mounts edit returns. The old root
// filesystem's changes are not carried over (the agent keeps its state on
// /var/vcap/data and the persistent disk); a dynamic network's address may
// change. why is logged: recreation is what an operator should know of.
func (r *Runtime) recreate(ctx context.Context, vmCID, why string, edit func([]mount.Mount) []mount.Mount) error {
	release, err := r.lockVM(ctx, vmCID)
	if err != nil {
		return err
	}
	defer release()
	if err := r.settleLocked(ctx, vmCID); err != nil {
		return err
	}
	old, err := r.inspectContainer(ctx, vmCID)
	if err != nil {
		return err
	}
	body, err := r.readSettings(ctx, vmCID, old.ID)
	if err != nil {
		return err
	}
	r.log.Info("recreating the VM's container: a mount cannot change in a running container on a remote Docker host",
		"vm", vmCID, "container", old.ID, "reason", why, "host", r.cfg.Host)
	prev := r.name(vmCID) + prevSuffix
	if err := r.api.ContainerRename(ctx, old.ID, prev); err != nil {
		return r.fail(err, "recreating VM '%s': renaming its container to '%s'", vmCID, prev)
	}
	if err := r.replaceContainer(ctx, vmCID, old, body, edit); err != nil {
		if serr := r.settleLocked(context.WithoutCancel(ctx), vmCID); serr != nil {
			r.log.Error("putting the VM's container back failed", "vm", vmCID, "err", serr)
		}
		return err
	}
	if err := r.api.ContainerRemove(ctx, old.ID, container.RemoveOptions{Force: true}); err != nil {
		return r.fail(err, "recreating VM '%s': removing the replaced container", vmCID)
	}
	return nil
}

// replaceContainer stops the renamed old container and makes and starts
// its successor under the VM's name.
func (r *Runtime) replaceContainer(ctx context.Context, vmCID string, old container.InspectResponse, settings []byte, edit func([]mount.Mount) []mount.Mount) error {
	timeout := int(r.cfg.StopTimeout.Seconds())
	if err := r.api.ContainerStop(ctx, old.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		return r.fail(err, "recreating VM '%s': stopping the old container", vmCID)
	}
	cfg := *old.Config
	host := *old.HostConfig
	host.Mounts = edit(append([]mount.Mount(nil), old.HostConfig.Mounts...))
	first := string(old.HostConfig.NetworkMode)
	eps := map[string]*network.EndpointSettings{}
	if ep := old.NetworkSettings.Networks[first]; ep != nil {
		eps[first] = r.endpointLike(ep)
	}
	if _, err := r.api.ContainerCreate(ctx, &cfg, &host, &network.NetworkingConfig{EndpointsConfig: eps}, nil, r.name(vmCID)); err != nil {
		return r.fail(err, "recreating VM '%s': creating its new container", vmCID)
	}
	for name, ep := range old.NetworkSettings.Networks {
		if name == first {
			continue
		}
		if err := r.api.NetworkConnect(ctx, name, r.name(vmCID), r.endpointLike(ep)); err != nil {
			return r.fail(err, "recreating VM '%s': connecting network '%s'", vmCID, name)
		}
	}
	if err := r.putSettings(ctx, vmCID, settings); err != nil {
		return err
	}
	if err := r.api.ContainerStart(ctx, r.name(vmCID), container.StartOptions{}); err != nil {
		return r.fail(err, "recreating VM '%s': starting its new container", vmCID)
	}
	return nil
}

// endpointLike asks for what the old endpoint had: its static address and,
// where the API takes one per endpoint, its MAC (before API 1.44 the
// first network's MAC is in the container's config, the others follow
// from their static IP).
func (r *Runtime) endpointLike(ep *network.EndpointSettings) *network.EndpointSettings {
	out := &network.EndpointSettings{IPAMConfig: ep.IPAMConfig}
	if perEndpointMAC(r.apiVer) {
		out.MacAddress = ep.MacAddress
	}
	return out
}

// settle puts back a container a killed recreation left renamed (see the
// file's comment). Cheap when there is none: one inspect, no lock.
func (r *Runtime) settle(ctx context.Context, vmCID string) error {
	if _, found, err := r.prevContainer(ctx, vmCID); err != nil || !found {
		return err
	}
	release, err := r.lockVM(ctx, vmCID)
	if err != nil {
		return err
	}
	defer release()
	return r.settleLocked(ctx, vmCID)
}

func (r *Runtime) settleLocked(ctx context.Context, vmCID string) error {
	prev, found, err := r.prevContainer(ctx, vmCID)
	if err != nil || !found {
		return err
	}
	if cur, err := r.api.ContainerInspect(ctx, r.name(vmCID)); err == nil && cur.ID != prev.ID {
		if err := r.api.ContainerRemove(ctx, cur.ID, container.RemoveOptions{Force: true}); err != nil {
			return r.fail(err, "VM '%s': removing the container an interrupted recreation made", vmCID)
		}
	}
	if err := r.api.ContainerRename(ctx, prev.ID, r.name(vmCID)); err != nil {
		return r.fail(err, "VM '%s': renaming its container back from '%s'", vmCID, r.name(vmCID)+prevSuffix)
	}
	if err := r.api.ContainerStart(ctx, prev.ID, container.StartOptions{}); err != nil {
		return r.fail(err, "VM '%s': starting its container again", vmCID)
	}
	r.log.Warn("an interrupted recreation of the VM's container was undone: the container from before it is back", "vm", vmCID, "container", prev.ID)
	return nil
}

// prevContainer finds the VM's "<name>.prev" container, if one of ours.
func (r *Runtime) prevContainer(ctx context.Context, vmCID string) (container.InspectResponse, bool, error) {
	c, err := r.api.ContainerInspect(ctx, r.name(vmCID)+prevSuffix)
	if err != nil {
		if err = r.fail(err, "VM '%s': looking for an interrupted recreation", vmCID); errors.Is(err, cpierr.ErrNotFound) {
			return c, false, nil
		}
		return c, false, err
	}
	return c, isVMContainer(c, vmCID), nil
}
