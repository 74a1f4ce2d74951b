package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// Paths inside the container.
const (
	// SettingsPath is where warden stemcells' agent reads its settings.
	SettingsPath = "/var/vcap/bosh/warden-cpi-agent-env.json"
	// DiskHintDir holds one directory per attached persistent disk; the
	// warden agent bind-mounts DiskHintDir/<disk-cid> to /var/vcap/store.
	DiskHintDir = "/warden-cpi-dev"
	// EphemeralPath is the ephemeral disk (a Docker volume, not sized).
	EphemeralPath = "/var/vcap/data"
)

// containerSpec is what CreateVM builds a container from.
type containerSpec struct {
	CID         string
	StemcellCID string
	CPUs        int
	MemoryMiB   int
	NICs        []nicSpec
	// Disks are persistent disks mounted before the container starts (the
	// bosh CLI names a recreated VM's disk at create_vm; attach_disk
	// follows and finds it attached). DisksInSettings: their hints go into
	// the settings too (stemcell API 1).
	Disks           []string
	DisksInSettings bool
	// Command is the container's PID 1; default /sbin/init.
	Command []string
	// Init is vm.InitSystemd or vm.InitPlain to override what the
	// stemcell's LabelInit says; "" follows the label.
	Init string
	// Systemd (resolved from Init and the stemcell at create_vm): systemd
	// runs as PID 1 unprivileged: systemdCaps, tmpfs at /run and /run/lock,
	// the host's /sys/fs/cgroup bound read-only, the container=docker
	// environment systemd checks, and SIGRTMIN+3 as its stop signal
	// (systemd's clean shutdown).
	Systemd bool
	// Privileged only on explicit request (VM cloud_properties
	// container.privileged): Docker's privileged mode asks for every
	// capability, and where dockerd's own bounding set lacks one (dockerd
	// in a restricted container: this project's test machines lack
	// CAP_SYS_RESOURCE) such a container cannot start.
	Privileged bool
	// CapAdd are capabilities beyond Docker's default set (e.g.
	// SYS_ADMIN, which lets the agent mount).
	CapAdd []string
}

// systemdCaps is what a systemd stemcell's bosh-agent needs beyond
// Docker's default set, measured with the agent stemcell (see README):
// SYS_ADMIN for its mounts (the persistent disk's bind mount, tmpfs) and
// the hostname, NET_ADMIN for its network setup.
var systemdCaps = []string{"SYS_ADMIN", "NET_ADMIN"}

// resolveInit decides whether the container runs systemd: the VM's
// cloud_properties (container.init) win over the stemcell's LabelInit.
func resolveInit(override string, labels map[string]string) bool {
	switch override {
	case vm.InitSystemd:
		return true
	case vm.InitPlain:
		return false
	}
	return labels[LabelInit] == vm.InitSystemd
}

// NIC is one BOSH network's interface.
type nicSpec struct {
	// BOSHNetwork is the network's key in the settings (its MAC is there).
	BOSHNetwork string
	// DockerNetwork is the network to join; "" means Config.Network.
	DockerNetwork string
	// IP is the static address of a manual network; "" lets Docker's IPAM
	// choose (dynamic networks).
	IP string
	// Create asks for DockerNetwork to be made with this subnet when it
	// does not exist; nil means it must exist.
	Create *Subnet
}

// createContainerVM creates and starts the container. The settings are
// written to SettingsPath before the container starts; the returned
// settings carry the MAC each NIC really has. On failure nothing it made
// is left.
func (r *Runtime) createContainerVM(ctx context.Context, spec containerSpec, settings agentsettings.Settings) (agentsettings.Settings, error) {
	u := &undo{log: r.log}
	out, err := r.createVM(ctx, spec, settings, u)
	if err != nil {
		u.run()
		return agentsettings.Settings{}, err
	}
	r.log.Info("vm created", "cid", spec.CID, "stemcell", spec.StemcellCID, "nics", len(spec.NICs))
	return out, nil
}

func (r *Runtime) createVM(ctx context.Context, spec containerSpec, settings agentsettings.Settings, u *undo) (agentsettings.Settings, error) {
	img, err := r.stemcellImage(ctx, spec.StemcellCID)
	if err != nil {
		return settings, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	spec.Systemd = resolveInit(spec.Init, img.Config.Labels)
	plan, settings, err := r.planNICs(spec, settings)
	if err != nil {
		return settings, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	for _, n := range plan {
		if err := r.ensureNetwork(ctx, n, u); err != nil {
			return settings, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
		}
	}
	// A test's tampering may omit the settings file: no file, no mount.
	omitSettings := r.tamperSettings != nil && r.tamperSettings(settings) == nil
	mounts, err := r.prepareMounts(ctx, spec.CID, !omitSettings, u)
	if err != nil {
		return settings, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if !r.local {
		diskMounts, err := r.volumeDiskMountsAtCreation(ctx, spec.CID, spec.Disks)
		if err != nil {
			return settings, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
		}
		mounts = append(mounts, diskMounts...)
	}
	if err := r.createContainer(ctx, spec, img.ID, plan, mounts, u); err != nil {
		return settings, err
	}
	for _, n := range plan[1:] {
		if err := r.api.NetworkConnect(ctx, n.network, r.name(spec.CID), n.endpoint(r.apiVer)); err != nil {
			return settings, r.fail(err, "creating VM '%s': connecting network '%s' (BOSH network '%s')", spec.CID, n.network, n.bosh)
		}
	}
	if settings, err = r.attachAtCreation(ctx, spec, settings, u); err != nil {
		return settings, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	written := &settings
	if r.tamperSettings != nil {
		written = r.tamperSettings(settings)
	}
	if written != nil {
		if err := r.writeSettings(ctx, spec.CID, *written); err != nil {
			return settings, err
		}
	}
	if err := r.api.ContainerStart(ctx, r.name(spec.CID), container.StartOptions{}); err != nil {
		if strings.Contains(err.Error(), "unable to apply caps") {
			return settings, r.fail(err, "creating VM '%s': starting container (privileged=%t, cap_add=%v): dockerd's capability bounding set lacks some asked for", spec.CID, spec.Privileged, capsFor(spec))
		}
		return settings, r.fail(err, "creating VM '%s': starting container", spec.CID)
	}
	return settings, r.checkMACs(ctx, spec.CID, plan)
}

func (r *Runtime) createContainer(ctx context.Context, spec containerSpec, imageID string, plan []nicPlan, mounts []mount.Mount, u *undo) error {
	cmd := spec.Command
	if len(cmd) == 0 {
		cmd = []string{"/sbin/init"}
	}
	labels := r.labels("vm", spec.CID)
	labels[LabelStemcell] = spec.StemcellCID
	cfg := &container.Config{Image: imageID, Cmd: cmd, Hostname: spec.CID, Labels: labels}
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(plan[0].network),
		Mounts:      mounts,
		Privileged:  spec.Privileged,
		CapAdd:      capsFor(spec),
		Resources:   container.Resources{Memory: int64(spec.MemoryMiB) << 20, NanoCPUs: int64(spec.CPUs) * 1e9},
	}
	if spec.MemoryMiB > 0 {
		host.Resources.MemorySwap = host.Resources.Memory // no swap beyond the limit
	}
	if spec.Systemd {
		cfg.Env = append(cfg.Env, "container=docker")
		cfg.StopSignal = "SIGRTMIN+3"
		host.Tmpfs = map[string]string{"/run": "rw,exec", "/run/lock": "rw"}
		// systemd reads the hierarchy to place its units; read-only keeps
		// the host's cgroups out of the guest's reach.
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: "/sys/fs/cgroup", Target: "/sys/fs/cgroup", ReadOnly: true})
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{plan[0].network: plan[0].endpoint(r.apiVer)}}
	if !perEndpointMAC(r.apiVer) {
		cfg.MacAddress = plan[0].mac //nolint:staticcheck // the only way to set a MAC before API 1.44
	}
	created, err := r.api.ContainerCreate(ctx, cfg, host, netCfg, nil, r.name(spec.CID))
	if err != nil && strings.Contains(err.Error(), "Range of CPUs") {
		return fmt.Errorf("creating VM '%s' with %d CPUs: %w: %v", spec.CID, spec.CPUs, cpierr.ErrImpossible, err)
	}
	if err != nil {
		return r.fail(err, "creating VM '%s': creating container from stemcell '%s'", spec.CID, spec.StemcellCID)
	}
	u.add("removing container "+created.ID, func(ctx context.Context) error {
		return r.api.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true})
	})
	return nil
}

// attachAtCreation mounts the spec's disks into the created container's
// disk directory, as attach_disk would, before it starts (on a remote host
// the container was made with their volumes: only the hints remain).
func (r *Runtime) attachAtCreation(ctx context.Context, spec containerSpec, settings agentsettings.Settings, u *undo) (agentsettings.Settings, error) {
	if len(spec.Disks) > 0 && spec.DisksInSettings {
		settings.Disks.Persistent = maps.Clone(settings.Disks.Persistent)
		if settings.Disks.Persistent == nil {
			settings.Disks.Persistent = map[string]disk.Hint{}
		}
	}
	for _, d := range spec.Disks {
		hint := disk.Hint{ID: d, Path: DiskHintDir + "/" + d}
		if r.local {
			var err error
			if hint, err = r.AttachDisk(ctx, spec.CID, d); err != nil {
				return settings, err
			}
			u.add("unmounting disk "+d, func(context.Context) error { return r.unmountDisk(spec.CID, d) })
		}
		if spec.DisksInSettings {
			settings.Disks.Persistent[d] = hint
		}
	}
	return settings, nil
}

// capsFor is what the container gets beyond Docker's default set.
func capsFor(spec containerSpec) []string {
	caps := append([]string(nil), spec.CapAdd...)
	if spec.Systemd && !spec.Privileged {
		for _, c := range systemdCaps {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	return caps
}

// prepareMounts makes the ephemeral volume and, on a local host, the VM's
// shared disk directory (persistent disks are mounted into it later and
// appear in the running container without recreating it) and its settings
// file (withSettings).
func (r *Runtime) prepareMounts(ctx context.Context, cid string, withSettings bool, u *undo) ([]mount.Mount, error) {
	eph := r.name(cid) + "-ephemeral"
	if _, err := r.api.VolumeCreate(ctx, volume.CreateOptions{Name: eph, Labels: r.labels("ephemeral", cid)}); err != nil {
		return nil, r.fail(err, "creating ephemeral volume '%s'", eph)
	}
	u.add("removing volume "+eph, func(ctx context.Context) error { return r.api.VolumeRemove(ctx, eph, true) })
	mounts := []mount.Mount{{Type: mount.TypeVolume, Source: eph, Target: EphemeralPath}}
	if !r.local {
		return mounts, nil
	}
	dir := r.vmDir(cid)
	u.add("removing "+dir, func(context.Context) error { return os.RemoveAll(dir) })
	disks := filepath.Join(dir, "disks")
	if err := sharedDir(disks); err != nil {
		return nil, err
	}
	u.add("unmounting "+disks, func(context.Context) error { return unmount(disks) })
	mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: disks, Target: DiskHintDir,
		BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}})
	if !withSettings {
		return mounts, nil
	}
	settingsMount, err := r.settingsMount(cid)
	if err != nil {
		return nil, err
	}
	return append(mounts, settingsMount), nil
}

// inspectVM finds a container of ours; ErrNotFound otherwise. On a remote
// host it first undoes a recreation a killed call left (recreate.go).
func (r *Runtime) inspectVM(ctx context.Context, cid string) (container.InspectResponse, error) {
	if !r.local {
		if err := r.settle(ctx, cid); err != nil {
			return container.InspectResponse{}, err
		}
	}
	return r.inspectContainer(ctx, cid)
}

func (r *Runtime) inspectContainer(ctx context.Context, cid string) (container.InspectResponse, error) {
	c, err := r.api.ContainerInspect(ctx, r.name(cid))
	if err != nil {
		return c, r.fail(err, "finding VM '%s'", cid)
	}
	if !isVMContainer(c, cid) {
		return c, fmt.Errorf("VM '%s': container '%s' is not one of ours: %w", cid, r.name(cid), cpierr.ErrNotFound)
	}
	return c, nil
}

// isVMContainer tells whether c is a container of ours made for VM cid
// (under its name, or renamed by a recreation).
func isVMContainer(c container.InspectResponse, cid string) bool {
	return c.Config != nil && ours(c.Config.Labels) && c.Config.Labels[LabelCID] == cid
}

// HasVM tells whether the VM's container exists (running or not).
func (r *Runtime) HasVM(ctx context.Context, cid string) (bool, error) {
	_, err := r.inspectVM(ctx, cid)
	if errors.Is(err, cpierr.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DeleteVM removes the container, its ephemeral volume and its directory.
// Persistent disks still attached are unmounted (never removed): they
// survive and can be attached elsewhere.
func (r *Runtime) DeleteVM(ctx context.Context, cid string) error {
	c, err := r.inspectVM(ctx, cid)
	if err != nil {
		return err
	}
	timeout := int(r.cfg.StopTimeout.Seconds())
	if err := r.api.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil && !errors.Is(r.fail(err, ""), cpierr.ErrNotFound) {
		r.log.Warn("stopping container failed; removing it by force", "cid", cid, "err", err)
	}
	if err := r.api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
		return r.fail(err, "deleting VM '%s': removing container", cid)
	}
	eph := r.name(cid) + "-ephemeral"
	if err := r.api.VolumeRemove(ctx, eph, true); err != nil {
		return r.fail(err, "deleting VM '%s': removing ephemeral volume '%s'", cid, eph)
	}
	if err := r.releaseVMDir(cid); err != nil {
		return fmt.Errorf("deleting VM '%s': %w", cid, err)
	}
	r.log.Info("vm deleted", "cid", cid)
	return nil
}

// releaseVMDir unmounts the VM's disks and its shared directory, then
// removes the directory with its metadata.
func (r *Runtime) releaseVMDir(cid string) error {
	dir := r.vmDir(cid)
	disks, err := r.attachedDisks(cid)
	if err != nil {
		return err
	}
	for _, d := range disks {
		if err := r.unmountDisk(cid, d); err != nil {
			return err
		}
	}
	if err := unmount(filepath.Join(dir, "disks")); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// RebootVM restarts the container. Its filesystem (with the settings) and
// its attached disks stay; the shared directory and the disk mounts are
// made again first, should the host have lost them (a host reboot).
func (r *Runtime) RebootVM(ctx context.Context, cid string) error {
	c, err := r.inspectVM(ctx, cid)
	if err != nil {
		return err
	}
	if err := r.ensureDiskMounts(cid); err != nil {
		return fmt.Errorf("rebooting VM '%s': %w", cid, err)
	}
	timeout := int(r.cfg.StopTimeout.Seconds())
	if err := r.api.ContainerRestart(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		return r.fail(err, "rebooting VM '%s'", cid)
	}
	r.log.Info("vm rebooted", "cid", cid)
	return nil
}

// UpdateSettings rewrites the settings file in the VM's container. Warden
// stemcells read no meta-data, so publicKeys have nowhere to go (the
// agent's own bosh ssh works without them); they are logged as dropped.
func (r *Runtime) UpdateSettings(ctx context.Context, cid string, settings agentsettings.Settings, publicKeys []string) error {
	if len(publicKeys) > 0 {
		r.log.Info("warden stemcells read no meta-data: SSH public keys are not delivered", "cid", cid, "keys", len(publicKeys))
	}
	return r.updateSettings(ctx, cid, settings)
}

func (r *Runtime) updateSettings(ctx context.Context, cid string, settings agentsettings.Settings) error {
	if _, err := r.inspectVM(ctx, cid); err != nil {
		return err
	}
	return r.writeSettings(ctx, cid, settings)
}

// SetVMMetadata keeps the metadata in the VM's directory in store_dir
// (metadata.json, replaced atomically). Container labels cannot change
// after creation, and a file beside the VM's disk directory needs no
// further Docker object that could leak; it goes with DeleteVM.
func (r *Runtime) SetVMMetadata(ctx context.Context, cid string, meta vm.Metadata) error {
	if _, err := r.inspectVM(ctx, cid); err != nil {
		return err
	}
	return writeJSON(filepath.Join(r.vmDir(cid), "metadata.json"), meta)
}

// VMMetadata reads what SetVMMetadata stored (empty when none).
func (r *Runtime) VMMetadata(ctx context.Context, cid string) (vm.Metadata, error) {
	if _, err := r.inspectVM(ctx, cid); err != nil {
		return nil, err
	}
	meta := vm.Metadata{}
	err := readJSON(filepath.Join(r.vmDir(cid), "metadata.json"), &meta)
	if errors.Is(err, os.ErrNotExist) {
		return vm.Metadata{}, nil
	}
	return meta, err
}

// checkMACs compares each NIC's MAC in the running container with the one
// in the settings: the agent finds its NICs by them.
func (r *Runtime) checkMACs(ctx context.Context, cid string, plan []nicPlan) error {
	c, err := r.inspectVM(ctx, cid)
	if err != nil {
		return err
	}
	for _, n := range plan {
		ep := c.NetworkSettings.Networks[n.network]
		if ep == nil {
			return fmt.Errorf("creating VM '%s': container has no endpoint on network '%s'", cid, n.network)
		}
		if !strings.EqualFold(ep.MacAddress, n.mac) {
			return fmt.Errorf("creating VM '%s': NIC of BOSH network '%s' has MAC %s, the settings say %s", cid, n.bosh, ep.MacAddress, n.mac)
		}
	}
	return nil
}
