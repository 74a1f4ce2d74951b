package docker

import (
	"context"
	"fmt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// CreateVM creates and starts the VM's container from the CPI's spec
// (disks given are mounted into it before it starts, as attach_disk does):
// cpus and memory become the container's CPU quota and memory limit (with
// no swap beyond it), both enforced by the kernel; ephemeral_disk is not
// enforced (the ephemeral volume has no size on overlay2 over ext4, see
// README). What a container cannot be is refused before anything is made.
func (r *Runtime) CreateVM(ctx context.Context, spec vm.Spec, settings agentsettings.Settings) (agentsettings.Settings, error) {
	cs, err := containerSpecFor(spec)
	if err != nil {
		return agentsettings.Settings{}, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if len(spec.PublicKeys) > 0 {
		r.log.Info("warden stemcells read no meta-data: SSH public keys are not delivered", "cid", spec.CID, "keys", len(spec.PublicKeys))
	}
	return r.createContainerVM(ctx, cs, settings)
}

// containerSpecFor maps the CPI's VM spec onto a container.
func containerSpecFor(spec vm.Spec) (containerSpec, error) {
	cs := containerSpec{CID: spec.CID, StemcellCID: spec.StemcellCID, CPUs: spec.Props.CPUs, MemoryMiB: spec.Props.MemoryMiB,
		Init: spec.Props.Container.Init, Privileged: spec.Props.Container.Privileged, DisksInSettings: spec.PersistentDisksInSettings}
	for _, d := range spec.Disks {
		cs.Disks = append(cs.Disks, d.DiskCID)
	}
	for _, n := range spec.NICs {
		nic, err := nicSpecFor(n)
		if err != nil {
			return containerSpec{}, err
		}
		cs.NICs = append(cs.NICs, nic)
	}
	return cs, nil
}

// nicSpecFor maps one NIC: its network name is a Docker network; a network
// the cloud_properties ask to create becomes a Docker bridge network with
// the manual network's subnet and gateway.
func nicSpecFor(n vm.NIC) (nicSpec, error) {
	if n.UserMode {
		return nicSpec{}, fmt.Errorf("Docker runtime: BOSH network '%s': mode user is QEMU's user-mode networking: %w", n.BOSHNetwork, cpierr.ErrNotSupported)
	}
	nic := nicSpec{BOSHNetwork: n.BOSHNetwork, DockerNetwork: n.LibvirtNetwork, IP: n.IP}
	if n.Create == nil {
		return nic, nil
	}
	switch {
	case n.Create.Mode == network.ModeBridge:
		return nicSpec{}, fmt.Errorf("Docker runtime: BOSH network '%s': mode bridge (an existing host bridge) has no Docker equivalent here; create a macvlan or bridge Docker network and name it: %w", n.BOSHNetwork, cpierr.ErrNotSupported)
	case n.Create.Subnet == nil:
		return nicSpec{}, fmt.Errorf("Docker runtime: BOSH network '%s': creating Docker network '%s' needs a manual network's subnet: %w", n.BOSHNetwork, n.Create.Name, cpierr.ErrNotSupported)
	}
	nic.Create = &Subnet{CIDR: n.Create.Subnet.String(), Gateway: n.Create.Gateway.String()}
	return nic, nil
}
