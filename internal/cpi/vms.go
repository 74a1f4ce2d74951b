package cpi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cloudfoundry/bosh-cpi-go/apiv1"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/atomicfile"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// CreateVM is create_vm for API v1: the VM CID alone.
func (c *CPI) CreateVM(agentID apiv1.AgentID, stemcellCID apiv1.StemcellCID, props apiv1.VMCloudProps,
	networks apiv1.Networks, diskCIDs []apiv1.DiskCID, env apiv1.VMEnv) (apiv1.VMCID, error) {
	cid, _, err := c.CreateVMV2(agentID, stemcellCID, props, networks, diskCIDs, env)
	return cid, err
}

// CreateVMV2 creates and starts a VM whose config drive carries the full
// agent settings. A failure leaves nothing behind and answers
// VMCreationFailed; ok_to_retry is set when the cause may pass.
func (c *CPI) CreateVMV2(agentID apiv1.AgentID, stemcellCID apiv1.StemcellCID, props apiv1.VMCloudProps,
	networks apiv1.Networks, diskCIDs []apiv1.DiskCID, env apiv1.VMEnv) (apiv1.VMCID, apiv1.Networks, error) {
	start := time.Now()
	spec, settings, err := c.planVM(agentID, stemcellCID, props, networks, diskCIDs, env)
	if err != nil {
		return apiv1.VMCID{}, nil, cpierr.New(cpierr.TypeVMCreationFailed, err, "creating VM for agent '%s'", agentID.AsString())
	}
	log := c.log.With("vm_cid", spec.CID, "agent_id", spec.AgentID)
	b, err := c.openRuntime()
	if err != nil {
		return apiv1.VMCID{}, nil, cpierr.New(cpierr.TypeVMCreationFailed, err, "creating VM '%s'", spec.CID).Retryable()
	}
	var diskLocks []string
	for _, d := range spec.Disks {
		diskLocks = append(diskLocks, d.DiskCID)
	}
	var completed agentsettings.Settings
	err = c.withLocks(append([]string{spec.CID}, diskLocks...), func() error {
		completed, err = b.CreateVM(c.ctx, spec, settings)
		if err != nil {
			return err
		}
		return c.keepForRewritesOrUndo(b, spec, completed)
	})
	if err != nil {
		failure := cpierr.New(cpierr.TypeVMCreationFailed, err, "creating VM '%s' from stemcell '%s'", spec.CID, spec.StemcellCID)
		if retryable(err) {
			failure.Retryable()
		}
		return apiv1.VMCID{}, nil, failure
	}
	log.Info("created VM", "seconds", time.Since(start).Seconds(), "nics", len(spec.NICs), "persistent_disks", len(spec.Disks))
	return apiv1.NewVMCID(spec.CID), c.withDynamicAddresses(b, spec.CID, networks, completed), nil
}

// keepForRewritesOrUndo saves what a stemcell-API-v1 VM's settings
// rewrites need; a VM whose settings could not be rewritten would lose its
// disks at the next attach, so when saving fails the VM goes again.
func (c *CPI) keepForRewritesOrUndo(b Runtime, spec vm.Spec, settings agentsettings.Settings) error {
	err := c.saveSettingsIfNeeded(spec.CID, settings)
	if err == nil {
		err = c.saveKeysIfNeeded(spec.CID, spec.Props.SSHPublicKey)
	}
	if err == nil {
		return nil
	}
	if delErr := b.DeleteVM(c.ctx, spec.CID); delErr != nil {
		c.log.Error("could not remove the VM whose settings could not be saved", "vm_cid", spec.CID, "error", delErr)
	}
	_ = atomicfile.Remove(c.settingsPath(spec.CID))
	_ = atomicfile.Remove(c.keysPath(spec.CID))
	return err
}

// retryable tells whether a failed creation may succeed when tried again:
// not when an input is wrong or missing, nor when the pool is full.
func retryable(err error) bool {
	return !errors.Is(err, cpierr.ErrNotFound) && !errors.Is(err, cpierr.ErrNoSpace) &&
		!errors.Is(err, cpierr.ErrInUse) && !errors.Is(err, cpierr.ErrNotSupported) && !errors.Is(err, cpierr.ErrImpossible)
}

// planVM decides everything about the VM before anything is created, so
// that a bad input fails without side effects.
func (c *CPI) planVM(agentID apiv1.AgentID, stemcellCID apiv1.StemcellCID, props apiv1.VMCloudProps,
	networks apiv1.Networks, diskCIDs []apiv1.DiskCID, env apiv1.VMEnv) (vm.Spec, agentsettings.Settings, error) {
	vmProps, err := vm.ParseProps(props)
	if err != nil {
		return vm.Spec{}, agentsettings.Settings{}, err
	}
	if !stemcell.ValidCID(stemcellCID.AsString()) {
		return vm.Spec{}, agentsettings.Settings{}, fmt.Errorf("stemcell '%s' is not a stemcell CID of this CPI", stemcellCID.AsString())
	}
	envMap, err := asMap(env)
	if err != nil {
		return vm.Spec{}, agentsettings.Settings{}, fmt.Errorf("decoding env: %w", err)
	}
	spec := vm.Spec{CID: vm.NewCID(), AgentID: agentID.AsString(), StemcellCID: stemcellCID.AsString(), Props: vmProps,
		PublicKeys: c.publicKeys(vmProps), PersistentDisksInSettings: c.needsSettingsRewrite()}
	settings := agentsettings.New(spec.AgentID, spec.CID, c.cfg.Agent, envMap)
	if spec.NICs, err = c.planNICs(networks, &settings); err != nil {
		return vm.Spec{}, agentsettings.Settings{}, err
	}
	if spec.Disks, err = planDisks(diskCIDs); err != nil {
		return vm.Spec{}, agentsettings.Settings{}, err
	}
	return spec, settings, nil
}

// publicKeys are the SSH keys of the VM's meta-data: cpi.json's, then the
// VM's own cloud_properties key.
func (c *CPI) publicKeys(props vm.Props) []string {
	var keys []string
	for _, k := range []string{c.cfg.SSHPublicKey, props.SSHPublicKey} {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// vipNetworkType is the network type whose address some other system maps
// to the VM: it has no NIC of its own, and the agent skips it.
const vipNetworkType = "vip"

// planNICs gives each BOSH network but vip ones a NIC, in name order so
// that the first NIC is stable across calls; the runtime gives each its MAC
// and writes it into the NIC's network in the settings. vip networks go
// into the settings as the director sent them.
func (c *CPI) planNICs(networks apiv1.Networks, settings *agentsettings.Settings) ([]vm.NIC, error) {
	if len(networks) == 0 {
		return nil, errors.New("no networks given: a BOSH VM needs at least one")
	}
	names := make([]string, 0, len(networks))
	for name := range networks {
		names = append(names, name)
	}
	sort.Strings(names)
	var nics []vm.NIC
	ipOwners := map[string]string{}
	for _, name := range names {
		net := networks[name]
		if net.Type() == vipNetworkType {
			vip, err := agentNetwork(name, net, false)
			if err != nil {
				return nil, err
			}
			settings.Networks[name] = vip
			continue
		}
		nprops, err := network.ParseProps(net.CloudProps(), name)
		if err != nil {
			return nil, err
		}
		if nprops.Name == "" {
			nprops.Name = c.cfg.DefaultVMNetwork()
		}
		agentNet, err := agentNetwork(name, net, net.IsDynamic())
		if err != nil {
			return nil, err
		}
		if !net.IsDynamic() && net.IP() == "" {
			return nil, fmt.Errorf("network '%s' is of type %s but has no IP", name, net.Type())
		}
		if !net.IsDynamic() {
			if err := network.CheckManual(name, net.IP(), net.Netmask(), net.Gateway()); err != nil {
				return nil, err
			}
			if other, dup := ipOwners[net.IP()]; dup {
				return nil, fmt.Errorf("networks '%s' and '%s' both give the VM ip %s", other, name, net.IP())
			}
			ipOwners[net.IP()] = name
		}
		settings.Networks[name] = agentNet
		nic := vm.NIC{BOSHNetwork: name, LibvirtNetwork: nprops.Name, IP: net.IP(), Dynamic: net.IsDynamic(), UserMode: nprops.Mode == network.ModeUser}
		if nic.Create, err = network.PlanFor(nprops, name, net.IP(), net.Netmask(), net.Gateway()); err != nil {
			return nil, err
		}
		if nic.UserMode {
			nic.LibvirtNetwork = ""
		}
		nics = append(nics, nic)
	}
	return nics, nil
}

// agentNetwork is the settings form of one director network.
func agentNetwork(name string, net apiv1.Network, dynamic bool) (agentsettings.Network, error) {
	marshaler, ok := net.(json.Marshaler)
	if !ok {
		return agentsettings.Network{}, fmt.Errorf("network '%s' cannot be encoded", name)
	}
	n, err := agentsettings.NetworkFrom(marshaler, dynamic)
	if err != nil {
		return agentsettings.Network{}, fmt.Errorf("network '%s': %w", name, err)
	}
	return n, nil
}

// planDisks lists the persistent disks named at creation, after the
// ephemeral disk in the order given; the runtime gives them device targets.
// Only for stemcell API 1, whose settings follow attach and detach, does the
// runtime record their hints in the settings (spec.PersistentDisksInSettings):
// from API 2 on the settings are never rewritten, and an agent that boots
// with a disk in disks.persistent that the director has since moved refuses
// to start ("Unexpected disk attached"); the director tells it of its disks
// itself (add_persistent_disk), as OpenStack's CPI relies on with
// persistent: {}.
func planDisks(diskCIDs []apiv1.DiskCID) ([]vm.AttachedDisk, error) {
	var planned []vm.AttachedDisk
	for _, d := range diskCIDs {
		id := d.AsString()
		if !disk.ValidCID(id) {
			return nil, fmt.Errorf("disk '%s' is not a disk CID of this CPI", id)
		}
		// A disk given twice would wait forever on its own lock.
		if slices.ContainsFunc(planned, func(p vm.AttachedDisk) bool { return p.DiskCID == id }) {
			return nil, fmt.Errorf("disk '%s' is given twice in disk_cids", id)
		}
		planned = append(planned, vm.AttachedDisk{DiskCID: id})
	}
	return planned, nil
}

// DeleteVM removes the VM and what belongs to it alone; a VM that is gone
// (or was never ours) answers VMNotFound, which the director takes as done.
func (c *CPI) DeleteVM(cid apiv1.VMCID) error {
	return c.onObject(vmKind, cid.AsString(), "deleting", func(b Runtime, id string) error {
		err := b.DeleteVM(c.ctx, id)
		if err == nil || errors.Is(err, cpierr.ErrNotFound) {
			// atomicfile.Remove: also what a rewrite killed mid-way left.
			if rmErr := errors.Join(atomicfile.Remove(c.settingsPath(id)), atomicfile.Remove(c.keysPath(id))); rmErr != nil && err == nil {
				return rmErr
			}
		}
		return err
	})
}

// HasVM answers false for anything that is not a VM of ours.
func (c *CPI) HasVM(cid apiv1.VMCID) (bool, error) {
	id := cid.AsString()
	if !vm.ValidCID(id) {
		return false, nil
	}
	b, err := c.openRuntime()
	if err != nil {
		return false, err
	}
	found, err := b.HasVM(c.ctx, id)
	if err != nil {
		return false, cpierr.Wrap(err, "looking up VM '%s'", id)
	}
	return found, nil
}

// RebootVM shuts the VM down gracefully (forced after the configured
// timeout) and starts it again.
func (c *CPI) RebootVM(cid apiv1.VMCID) error {
	return c.onObject(vmKind, cid.AsString(), "rebooting", func(b Runtime, id string) error { return b.RebootVM(c.ctx, id) })
}

// SetVMMetadata keeps the director's metadata with the VM.
func (c *CPI) SetVMMetadata(cid apiv1.VMCID, meta apiv1.VMMeta) error {
	flat, err := flatten(meta)
	if err != nil {
		return cpierr.New(cpierr.TypeCloudError, err, "decoding metadata for VM '%s'", cid.AsString())
	}
	return c.onObject(vmKind, cid.AsString(), "setting metadata of", func(b Runtime, id string) error {
		return b.SetVMMetadata(c.ctx, id, vm.Metadata(flat))
	})
}

// CalculateVMCloudProperties maps the director's resource request to our
// cloud_properties.
func (c *CPI) CalculateVMCloudProperties(res apiv1.VMResources) (apiv1.VMCloudProps, error) {
	if res.CPU <= 0 || res.RAM <= 0 || res.EphemeralDiskSize < 0 {
		return nil, cpierr.New(cpierr.TypeCloudError, nil,
			"vm_resources need cpu > 0 and ram > 0 (got cpu %d, ram %d, ephemeral_disk_size %d)", res.CPU, res.RAM, res.EphemeralDiskSize)
	}
	ephemeral := res.EphemeralDiskSize
	if ephemeral == 0 {
		ephemeral = vm.DefaultEphemeralDiskMiB
	}
	return apiv1.NewVMCloudPropsFromMap(map[string]any{
		"cpus":           res.CPU,
		"memory":         res.RAM,
		"ephemeral_disk": ephemeral,
	}), nil
}

// settingsPath is where the settings of a VM whose stemcell predates API v2
// are kept, to be rewritten on attach and detach.
func (c *CPI) settingsPath(vmCID string) string {
	return filepath.Join(c.cfg.VMDir(), vmCID+".json")
}

func (c *CPI) needsSettingsRewrite() bool { return c.stemcellAPIVersion < 2 }

// keysPath keeps a stemcell-API-v1 VM's own SSH key (its cloud_properties'),
// which its rewritten config drive must carry again.
func (c *CPI) keysPath(vmCID string) string {
	return filepath.Join(c.cfg.VMDir(), vmCID+".ssh_public_key")
}

func (c *CPI) saveKeysIfNeeded(vmCID, key string) error {
	if !c.needsSettingsRewrite() || key == "" {
		return nil
	}
	return atomicfile.Write(c.keysPath(vmCID), []byte(key), 0o600)
}

// savedKeys are the meta-data keys of a VM whose config drive is rewritten.
func (c *CPI) savedKeys(vmCID string) []string {
	key, _ := os.ReadFile(c.keysPath(vmCID))
	return c.publicKeys(vm.Props{SSHPublicKey: string(key)})
}

func (c *CPI) saveSettingsIfNeeded(vmCID string, settings agentsettings.Settings) error {
	if !c.needsSettingsRewrite() {
		return nil
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.cfg.VMDir(), 0o700); err != nil {
		return fmt.Errorf("creating '%s': %w", c.cfg.VMDir(), err)
	}
	// The settings hold the mbus password: readable by us alone. Written
	// whole, since a kill mid-write must not leave settings no later
	// attach_disk can read.
	return atomicfile.Write(c.settingsPath(vmCID), raw, 0o600)
}

// rewriteSettings applies change to a stemcell-API-v1 VM's settings and
// has the runtime deliver them.
func (c *CPI) rewriteSettings(b Runtime, vmCID string, change func(*agentsettings.Settings)) error {
	if !c.needsSettingsRewrite() {
		return nil
	}
	raw, err := os.ReadFile(c.settingsPath(vmCID))
	if err != nil {
		return fmt.Errorf("reading saved settings of VM '%s': %w", vmCID, err)
	}
	var settings agentsettings.Settings
	if err := json.Unmarshal(raw, &settings); err != nil {
		return fmt.Errorf("decoding saved settings of VM '%s': %w", vmCID, err)
	}
	if settings.Disks.Persistent == nil {
		settings.Disks.Persistent = map[string]disk.Hint{}
	}
	change(&settings)
	if err := b.UpdateSettings(c.ctx, vmCID, settings, c.savedKeys(vmCID)); err != nil {
		return err
	}
	return c.saveSettingsIfNeeded(vmCID, settings)
}
