package hypervisor

import (
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/faults"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// CompleteVM decides what the CPI layer leaves to the hypervisor: a fresh
// MAC for each NIC, written into its network's settings so the agent finds
// the NIC by it, device targets for the persistent disks attached at
// creation, and the settings' disk hints (persistent ones only when
// spec.PersistentDisksInSettings). settings must hold a network for every
// NIC. It returns the completed spec and settings.
func (p Profile) CompleteVM(spec vm.Spec, settings agentsettings.Settings) (vm.Spec, agentsettings.Settings, error) {
	nics, err := p.withMACs(spec.NICs, settings.Networks)
	if err != nil {
		return vm.Spec{}, agentsettings.Settings{}, err
	}
	spec.NICs = nics
	settings.Disks.System = p.SystemDisk()
	ephemeral := p.EphemeralHint(spec.CID)
	settings.Disks.Ephemeral = &ephemeral
	if spec.Disks, err = p.withTargets(spec.Disks); err != nil {
		return vm.Spec{}, agentsettings.Settings{}, err
	}
	if settings.Disks.Persistent == nil {
		settings.Disks.Persistent = map[string]disk.Hint{}
	}
	if spec.PersistentDisksInSettings {
		for _, d := range spec.Disks {
			settings.Disks.Persistent[d.DiskCID] = p.PersistentHint(d.DiskCID, d.Target)
		}
	}
	return spec, settings, nil
}

// withMACs gives each NIC a fresh MAC and writes it into the NIC's network
// in networks.
func (p Profile) withMACs(planned []vm.NIC, networks map[string]agentsettings.Network) ([]vm.NIC, error) {
	nics := make([]vm.NIC, len(planned))
	for i, nic := range planned {
		mac, err := p.NewMAC()
		if err != nil {
			return nil, err
		}
		nic.MAC = mac
		nics[i] = nic
		net := networks[nic.BOSHNetwork]
		net.MAC = mac
		if faults.Active(faults.WrongSettingsMAC) {
			net.MAC = p.MACPrefix + ":ff:ff:fe"
		}
		networks[nic.BOSHNetwork] = net
	}
	return nics, nil
}

// withTargets gives the persistent disks attached at creation the targets
// after the VM's own disks, in order.
func (p Profile) withTargets(planned []vm.AttachedDisk) ([]vm.AttachedDisk, error) {
	disks := make([]vm.AttachedDisk, len(planned))
	for i, d := range planned {
		if p.DiskHintDir != "" {
			// A container's disk is a directory: its target is the hint path.
			d.Target = p.DiskHintPath(d.DiskCID)
			disks[i] = d
			continue
		}
		target, err := p.PersistentTarget(i)
		if err != nil {
			return nil, err
		}
		d.Target = target
		disks[i] = d
	}
	return disks, nil
}
