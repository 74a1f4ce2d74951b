package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/configdrive"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// rebootPollInterval is how often RebootVM checks whether the guest has
// powered off after the ACPI shutdown request.
const rebootPollInterval = 250 * time.Millisecond

// undoList remembers what a half-done CreateVM made so a failure can take
// it all back, newest first.
type undoList []func()

func (u *undoList) push(step func()) { *u = append(*u, step) }

func (u undoList) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// CreateVM completes the VM's settings with what the hypervisor decides
// (MACs, device hints), writes them onto the VM's config drive and creates
// the VM; it returns the settings the agent gets.
func (b *Backend) CreateVM(ctx context.Context, spec vm.Spec, settings agentsettings.Settings) (agentsettings.Settings, error) {
	if err := b.refused(hypervisor.OpCreateVM, fmt.Sprintf("creating VM '%s'", spec.CID)); err != nil {
		return agentsettings.Settings{}, err
	}
	if b.containers() {
		return b.createContainerVM(ctx, spec, settings)
	}
	// The stemcell decides the VM's devices, and so its disk hints.
	boot, err := b.bootOf(ctx, spec)
	if err != nil {
		return agentsettings.Settings{}, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	spec, settings, err = b.profile.ForDelivery(hypervisor.Delivery(boot.Delivery)).CompleteVM(spec, settings)
	if err != nil {
		return agentsettings.Settings{}, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	iso, err := b.settingsImage(spec.CID, hypervisor.Delivery(boot.Delivery), settings, spec.PublicKeys)
	if err != nil {
		return agentsettings.Settings{}, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if err := b.createVM(ctx, spec, boot, iso); err != nil {
		return agentsettings.Settings{}, err
	}
	return settings, nil
}

// createVM builds the VM's volumes and domain and starts it. Every step
// that made something registers its undo; on failure all of it is undone,
// so a failed create leaves nothing behind.
func (b *Backend) createVM(ctx context.Context, spec vm.Spec, boot storage.StemcellBoot, configDrive []byte) (err error) {
	var undo undoList
	defer func() {
		if err != nil {
			b.log.Warn("create_vm failed, removing what it made", "vm", spec.CID, "error", err)
			b.ReconnectIfLost(ctx)
			undo.run()
		}
	}()
	log := b.log.With("vm", spec.CID)
	started := time.Now()

	if err := xmldef.ValidateNICs(spec.NICs); err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	finish, err := b.beginVM(ctx, spec.CID, &undo)
	if err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if err := b.ensureNetworks(ctx, spec.NICs); err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if err := b.reserveAddresses(spec, &undo); err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	plan, err := b.prepareVolumes(ctx, spec, boot, configDrive, &undo)
	if err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if err := b.prepareConsoleLog(plan.ConsoleLog, &undo); err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	dom, err := b.defineDomain(plan, &undo)
	if err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if err := b.conn.DomainCreate(dom); err != nil {
		return fmt.Errorf("creating VM '%s': starting domain: %w", spec.CID, b.explainStartFailure(spec, host.Classify(err)))
	}
	// A record left behind would have the sweep take a VM the director
	// knows: failing to end it fails the call, whose undo removes the VM.
	if err := finish(); err != nil {
		return fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	log.Info("created VM", "stemcell", spec.StemcellCID, "cpus", spec.Props.CPUs, "memory_mib", spec.Props.MemoryMiB,
		"ephemeral_disk_mib", spec.Props.EphemeralDiskMiB, "nics", len(spec.NICs), "disks", len(spec.Disks),
		"seconds", fmt.Sprintf("%.2f", time.Since(started).Seconds()))
	return nil
}

// ensureNetworks checks every libvirt network a NIC names exists, and
// starts it when it is defined but inactive.
func (b *Backend) ensureNetworks(ctx context.Context, nics []vm.NIC) error {
	seen := map[string]bool{}
	for _, nic := range nics {
		if nic.UserMode || seen[nic.LibvirtNetwork] {
			continue
		}
		seen[nic.LibvirtNetwork] = true
		if err := b.ensureNetwork(ctx, nic); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) ensureNetwork(ctx context.Context, nic vm.NIC) error {
	name := nic.LibvirtNetwork
	net, err := b.conn.NetworkLookupByName(name)
	if err != nil && host.IsCode(err, golibvirt.ErrNoNetwork) && nic.Create != nil {
		return b.createNetwork(ctx, nic)
	}
	if err != nil {
		if host.IsCode(err, golibvirt.ErrNoNetwork) {
			return fmt.Errorf("libvirt network '%s' (for BOSH network '%s') does not exist; create it or set the network's cloud_properties.name: %w: %w", name, nic.BOSHNetwork, err, cpierr.ErrNotFound)
		}
		return fmt.Errorf("looking up libvirt network '%s': %w", name, err)
	}
	_, err = b.activateNetwork(net)
	return err
}

// prepareVolumes makes the root overlay, the ephemeral disk and the config
// drive, and resolves persistent disks, into a domain plan.
func (b *Backend) prepareVolumes(ctx context.Context, spec vm.Spec, boot storage.StemcellBoot, configDrive []byte, undo *undoList) (xmldef.Plan, error) {
	domainType, err := b.domainType()
	if err != nil {
		return xmldef.Plan{}, err
	}
	plan := xmldef.NewPlan(spec, b.profile, domainType, b.cfg.Machine, b.cfg.HotplugSlots, b.consoleLogPath(spec.CID))
	plan.WithBoot(boot.Firmware, hypervisor.Delivery(boot.Delivery))
	if plan.RootPath, err = b.createRootOverlay(ctx, spec, undo); err != nil {
		return xmldef.Plan{}, err
	}
	if plan.EphemeralPath, err = b.createEphemeralDisk(ctx, spec, undo); err != nil {
		return xmldef.Plan{}, err
	}
	if plan.ConfigPath, err = b.createConfigDrive(ctx, spec.CID, configDrive, undo); err != nil {
		return xmldef.Plan{}, err
	}
	if plan.PersistentDisks, err = b.persistentDisks(ctx, spec.Disks); err != nil {
		return xmldef.Plan{}, err
	}
	return plan, nil
}

// createRootOverlay makes a qcow2 volume whose backing file is the
// stemcell: copy-on-write, so its cost does not grow with the stemcell.
func (b *Backend) createRootOverlay(ctx context.Context, spec vm.Spec, undo *undoList) (string, error) {
	base, err := b.ownedStemcell(ctx, spec.StemcellCID)
	if err != nil {
		return "", err
	}
	name := xmldef.RootVolumeName(spec.CID)
	doc := storage.ThinVolume(name, base.Capacity, disk.FormatQcow2)
	doc.BackingStore = &libvirtxml.StorageVolumeBackingStore{
		Path:   base.Path,
		Format: &libvirtxml.StorageVolumeTargetFormat{Type: string(base.Format)},
	}
	_, path, err := b.createOwnedVolume(ctx, doc, "root disk", undo)
	return path, err
}

func (b *Backend) createEphemeralDisk(ctx context.Context, spec vm.Spec, undo *undoList) (string, error) {
	doc := storage.ThinVolume(xmldef.EphemeralVolumeName(spec.CID), uint64(spec.Props.EphemeralDiskMiB)*storage.MiB, disk.FormatQcow2)
	_, path, err := b.createOwnedVolume(ctx, doc, "ephemeral disk", undo)
	return path, err
}

// createOwnedVolume creates doc, registers its removal and returns it
// with its path.
func (b *Backend) createOwnedVolume(ctx context.Context, doc libvirtxml.StorageVolume, role string, undo *undoList) (golibvirt.StorageVol, string, error) {
	vol, err := b.CreateVolume(ctx, doc)
	if errors.Is(err, golibvirt.ErrInterrupted) {
		// The connection went mid-call: libvirtd may still make the
		// volume, whose name holds this call's fresh VM CID, so it is ours.
		undo.push(func() { b.UndoVolume(ctx, doc.Name) })
	}
	if err != nil {
		return golibvirt.StorageVol{}, "", fmt.Errorf("creating %s volume '%s': %w", role, doc.Name, err)
	}
	undo.push(func() { b.UndoVolume(ctx, doc.Name) })
	path, err := b.VolumePath(vol)
	if err != nil {
		return golibvirt.StorageVol{}, "", fmt.Errorf("%s volume '%s': %w", role, doc.Name, err)
	}
	return vol, path, nil
}

// persistentDisks resolves disks to attach at creation into <disk>
// elements. They are looked up only: never created, never removed here.
func (b *Backend) persistentDisks(ctx context.Context, disks []vm.AttachedDisk) ([]libvirtxml.DomainDisk, error) {
	devices := make([]libvirtxml.DomainDisk, 0, len(disks))
	for _, d := range disks {
		v, err := b.ownedDisk(ctx, d.DiskCID)
		if err != nil {
			return nil, fmt.Errorf("finding persistent disk '%s': %w", d.DiskCID, err)
		}
		devices = append(devices, xmldef.PersistentDiskDevice(v.Path, v.Format, d.DiskCID, d.Target))
	}
	return devices, nil
}

// remoteConsoleDir is where the console log goes when store_dir is no
// place for QEMU: libvirtd runs on another host (store_dir is on the CPI's
// machine), or a non-root user drives the system daemon (store_dir is in a
// home QEMU's user cannot enter). libvirt's own log directory exists
// wherever its QEMU driver runs.
const remoteConsoleDir = "/var/log/libvirt/qemu"

// consoleInStoreDir tells whether QEMU can write the console log under
// store_dir: libvirtd is local and QEMU's files are the CPI user's
// (root, or a session daemon that runs QEMU as the user itself).
func (b *Backend) consoleInStoreDir() bool {
	if !host.IsLocal(b.cfg.URI) {
		return false
	}
	return os.Geteuid() == 0 || host.IsSessionURI(b.cfg.URI)
}

// consoleLogPath is where QEMU writes the VM's serial console: under
// store_dir for a local libvirtd, in libvirt's log directory on the host
// for a remote one.
func (b *Backend) consoleLogPath(cid string) string {
	if !b.consoleInStoreDir() {
		return filepath.Join(b.hostLogDir(), cid+"-console.log")
	}
	return filepath.Join(b.cfg.ConsoleDir(), cid+".log")
}

// prepareConsoleLog makes the console directory (traversable by the QEMU
// user) and registers the log's removal. QEMU creates the file itself. On
// a remote host there is nothing to prepare and nothing the CPI can remove.
func (b *Backend) prepareConsoleLog(path string, undo *undoList) error {
	if !b.consoleInStoreDir() {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("creating console log directory '%s': %w", dir, err)
	}
	undo.push(func() {
		if err := removeConsoleLog(path); err != nil {
			b.log.Warn("could not remove console log", "path", path, "error", err)
		}
	})
	return nil
}

// removeConsoleLog removes the log; one QEMU never wrote is not an error.
func removeConsoleLog(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing console log '%s': %w", path, err)
	}
	return nil
}

// defineDomain builds the XML and defines the (persistent) domain,
// registering its removal.
func (b *Backend) defineDomain(plan xmldef.Plan, undo *undoList) (golibvirt.Domain, error) {
	def, err := xmldef.Build(plan)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	doc, err := def.Marshal()
	if err != nil {
		return golibvirt.Domain{}, fmt.Errorf("building XML of domain '%s': %w", plan.Name, err)
	}
	// VALIDATE checks the XML against libvirt's schema: a typo in our
	// structure fails here, with the schema's word on it.
	dom, err := b.conn.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
	if errors.Is(err, golibvirt.ErrInterrupted) {
		// The connection went mid-call: the domain may be defined, under
		// this call's fresh VM CID, so it is ours.
		undo.push(func() { b.removeDomainNamed(plan.Name) })
	}
	if err != nil {
		return golibvirt.Domain{}, fmt.Errorf("defining domain '%s': %w", plan.Name, host.Classify(err))
	}
	undo.push(func() { b.removeDomain(dom) })
	// After a host reboot (or a libvirtd restart that finds no domain
	// running) libvirtd starts the VM again, as the cloud would: the
	// environment comes back without create-env --recreate.
	if err := b.conn.DomainSetAutostart(dom, 1); err != nil {
		return golibvirt.Domain{}, fmt.Errorf("marking domain '%s' to start with the host: %w", plan.Name, host.Classify(err))
	}
	return dom, nil
}

// removeDomainNamed removes the domain called name if it exists.
func (b *Backend) removeDomainNamed(name string) {
	dom, err := b.conn.DomainLookupByName(name)
	if err != nil {
		if !cpierr.IsNotFound(host.Classify(err)) {
			b.log.Error("could not look up domain after a failure", "vm", name, "error", err)
		}
		return
	}
	b.removeDomain(dom)
}

// removeDomain stops and undefines dom, logging failures (used on paths
// that already return an error).
func (b *Backend) removeDomain(dom golibvirt.Domain) {
	if err := b.destroyIfRunning(dom); err != nil {
		b.log.Error("could not stop domain after a failure", "vm", dom.Name, "error", err)
	}
	if err := b.undefine(dom); err != nil && !cpierr.IsNotFound(err) {
		b.log.Error("could not undefine domain after a failure; remove it by hand", "vm", dom.Name, "error", err)
	}
}

// destroyIfRunning stops dom at once (no graceful shutdown): its disks are
// about to be deleted anyway.
func (b *Backend) destroyIfRunning(dom golibvirt.Domain) error {
	running, err := b.domainIsRunning(dom)
	if err != nil || !running {
		return err
	}
	// It may have stopped between the check and here: that is fine.
	if err := b.conn.DomainDestroy(dom); err != nil && !host.IsCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("stopping domain '%s': %w", dom.Name, host.Classify(err))
	}
	return nil
}

// undefine removes dom's definition with everything the driver keeps beside
// it (managed save image, snapshot and checkpoint metadata, NVRAM).
func (b *Backend) undefine(dom golibvirt.Domain) error {
	if err := b.conn.DomainUndefineFlags(dom, b.undefineFlags()); err != nil {
		return fmt.Errorf("undefining domain '%s': %w", dom.Name, host.Classify(err))
	}
	return nil
}

// DeleteVM stops the VM at once and removes it with the volumes it owns;
// its console log is moved aside and kept, bounded (keepConsoleLog), for a
// post-mortem. Persistent disks, even when still attached, are
// never touched: only volumes named <cid>-root/-ephemeral/-config.iso go.
// The domain is undefined last, so a call that fails half way can be
// retried: until then the VM is still found.
func (b *Backend) DeleteVM(ctx context.Context, cid string) error {
	dom, err := b.lookupOwnedDomain(cid)
	if err != nil {
		return fmt.Errorf("deleting VM '%s': %w", cid, err)
	}
	if err := b.destroyIfRunning(dom); err != nil {
		return fmt.Errorf("deleting VM '%s': %w", cid, err)
	}
	if b.containers() {
		if err := b.removeContainerRoot(cid); err != nil {
			return fmt.Errorf("deleting VM '%s': %w", cid, err)
		}
	}
	for _, name := range xmldef.OwnedVolumeNames(cid) {
		if err := b.DeleteVolumeIfExists(ctx, name); err != nil {
			return fmt.Errorf("deleting VM '%s': %w", cid, err)
		}
	}
	if b.consoleInStoreDir() {
		if err := keepConsoleLog(b.log, b.consoleLogPath(cid), cid, time.Now()); err != nil {
			return fmt.Errorf("deleting VM '%s': %w", cid, err)
		}
	}
	// Reservations go before the domain: a delete killed in between is
	// repeated by the director and finds the domain to finish with.
	if def, err := b.domainDefinition(dom, golibvirt.DomainXMLInactive); err == nil {
		b.releaseAddresses(*def)
	}
	if err := b.undefine(dom); err != nil {
		return fmt.Errorf("deleting VM '%s': %w", cid, err)
	}
	b.log.Info("deleted VM", "vm", cid)
	return nil
}

// HasVM is true for our domains, running or stopped; false for missing
// ones and for domains this CPI did not create.
func (b *Backend) HasVM(ctx context.Context, cid string) (bool, error) {
	_, err := b.lookupOwnedDomain(cid)
	switch {
	case err == nil:
		return true, nil
	case cpierr.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("checking VM '%s': %w", cid, err)
}

// RebootVM asks the guest to shut down (ACPI), waits up to reboot_timeout
// seconds, then pulls the plug, and starts the domain again. A stopped VM
// is simply started.
func (b *Backend) RebootVM(ctx context.Context, cid string) error {
	dom, err := b.lookupOwnedDomain(cid)
	if err != nil {
		return fmt.Errorf("rebooting VM '%s': %w", cid, err)
	}
	if err := b.shutDown(ctx, dom, time.Duration(b.cfg.RebootTimeout)*time.Second); err != nil {
		return fmt.Errorf("rebooting VM '%s': %w", cid, err)
	}
	if err := b.beforeStart(dom); err != nil {
		return fmt.Errorf("rebooting VM '%s': %w", cid, err)
	}
	if err := b.conn.DomainCreate(dom); err != nil {
		return fmt.Errorf("rebooting VM '%s': starting domain: %w", cid, host.Classify(err))
	}
	b.log.Info("rebooted VM", "vm", cid)
	return nil
}

// shutDown brings dom to shut off: gracefully when the guest answers ACPI
// within timeout, else by destroying it.
func (b *Backend) shutDown(ctx context.Context, dom golibvirt.Domain, timeout time.Duration) error {
	running, err := b.domainIsRunning(dom)
	if err != nil || !running {
		return err
	}
	if err := b.requestShutdown(dom); err != nil && !host.IsCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("requesting ACPI shutdown of domain '%s': %w", dom.Name, host.Classify(err))
	}
	stopped, err := b.waitForShutoff(ctx, dom, timeout)
	if err != nil || stopped {
		return err
	}
	b.log.Warn("guest did not shut down in time, resetting it", "vm", dom.Name, "timeout_seconds", timeout.Seconds())
	return b.destroyIfRunning(dom)
}

// waitForShutoff polls until dom is no longer running or timeout passes.
func (b *Backend) waitForShutoff(ctx context.Context, dom golibvirt.Domain, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		running, err := b.domainIsRunning(dom)
		if err != nil || !running {
			return !running, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("waiting for domain '%s' to shut down: %w", dom.Name, ctx.Err())
		case <-time.After(rebootPollInterval):
		}
	}
}

// SetVMMetadata records meta in our metadata element (beside agent_id and
// stemcell), as the title `virsh list --title` shows, and as "k=v" lines
// in the description; in the persistent definition and, when the domain
// runs, live.
func (b *Backend) SetVMMetadata(ctx context.Context, cid string, meta vm.Metadata) error {
	if err := b.refused(hypervisor.OpSetVMMetadata, fmt.Sprintf("setting metadata of VM '%s'", cid)); err != nil {
		return err
	}
	dom, marker, err := b.lookupOwnedDomainMarker(cid)
	if err != nil {
		return fmt.Errorf("setting metadata of VM '%s': %w", cid, err)
	}
	running, err := b.domainIsRunning(dom)
	if err != nil {
		return fmt.Errorf("setting metadata of VM '%s': %w", cid, err)
	}
	element, err := marker.WithTags(meta).Marshal()
	if err != nil {
		return fmt.Errorf("setting metadata of VM '%s': %w", cid, err)
	}
	changes := []struct {
		what     string
		kind     golibvirt.DomainMetadataType
		value    string
		key, uri golibvirt.OptString
	}{
		{"metadata element", golibvirt.DomainMetadataElement, element, golibvirt.OptString{xmldef.MetadataPrefix}, golibvirt.OptString{xmldef.MetadataNS}},
		{"title", golibvirt.DomainMetadataTitle, xmldef.TitleFor(cid, meta), nil, nil},
		{"description", golibvirt.DomainMetadataDescription, xmldef.DescriptionFor(meta), nil, nil},
	}
	for _, c := range changes {
		if err := b.setMetadata(dom, running, c.kind, c.value, c.key, c.uri); err != nil {
			return fmt.Errorf("setting %s of VM '%s': %w", c.what, cid, err)
		}
	}
	return nil
}

// setMetadata writes one kind of metadata to the definition and, when the
// domain runs, to the live domain too. A domain that has stopped since
// running was read is written in its definition only.
func (b *Backend) setMetadata(dom golibvirt.Domain, running bool, kind golibvirt.DomainMetadataType, value string, key, uri golibvirt.OptString) error {
	var text golibvirt.OptString
	if value != "" {
		text = golibvirt.OptString{value}
	}
	if running {
		err := b.conn.DomainSetMetadata(dom, int32(kind), text, key, uri, golibvirt.DomainAffectConfig|golibvirt.DomainAffectLive)
		if err == nil || !host.IsCode(err, golibvirt.ErrOperationInvalid) {
			return host.Classify(err)
		}
	}
	return host.Classify(b.conn.DomainSetMetadata(dom, int32(kind), text, key, uri, golibvirt.DomainAffectConfig))
}

// UpdateSettings rewrites the VM's config drive with settings and the
// meta-data's keys; the guest reads it on its next boot.
func (b *Backend) UpdateSettings(ctx context.Context, cid string, settings agentsettings.Settings, publicKeys []string) error {
	if b.containers() {
		return b.updateContainerSettings(cid, settings)
	}
	_, marker, err := b.lookupOwnedDomainMarker(cid)
	if err != nil {
		return fmt.Errorf("updating settings of VM '%s': %w", cid, err)
	}
	iso, err := b.settingsImage(cid, b.deliveryOf(marker), settings, publicKeys)
	if err != nil {
		return fmt.Errorf("updating settings of VM '%s': %w", cid, err)
	}
	return b.replaceConfigDrive(ctx, cid, iso)
}

// settingsImage is the disc image the VM's stemcell reads its settings
// from: a config-2 drive (OpenStack stemcells) or the env file on a
// CD-ROM (vSphere stemcells).
func (b *Backend) settingsImage(cid string, delivery hypervisor.Delivery, settings agentsettings.Settings, publicKeys []string) ([]byte, error) {
	switch delivery {
	case hypervisor.DeliveryConfigDrive:
		return configdrive.Build(settings, agentsettings.NewMetaData(cid, publicKeys))
	case hypervisor.DeliveryCDROMEnv:
		return configdrive.BuildEnvDisc(settings)
	}
	return nil, fmt.Errorf("settings delivery '%s' has no disc image in the libvirt runtime of hypervisor '%s': %w", delivery, b.profile.Driver, cpierr.ErrNotSupported)
}

// profileOf is the profile of an existing VM: its marker says whether
// its disks sit on the SCSI controller (a vSphere stemcell's VM on QEMU);
// a VM made before that was recorded keeps virtio-blk disks.
func (b *Backend) profileOf(marker xmldef.Marker) hypervisor.Profile {
	if marker.DiskBus == hypervisor.DiskBusSCSI {
		return b.profile.ForDelivery(b.deliveryOf(marker))
	}
	return b.profile
}

// deliveryOf is the settings delivery a VM's marker records; VMs made
// before it was recorded have the profile's.
func (b *Backend) deliveryOf(marker xmldef.Marker) hypervisor.Delivery {
	if marker.Delivery == "" {
		return b.profile.Delivery
	}
	return hypervisor.Delivery(marker.Delivery)
}

// bootOf decides how the VM boots and reads its settings: the stemcell's
// record says (a vSphere stemcell: the env CD-ROM and, as its OVF says,
// UEFI); cloud_properties' firmware may choose UEFI for any stemcell
// whose image supports it, but never BIOS for a UEFI-only one. Stemcells
// without a record (imported before it existed) are BIOS and config-2.
func (b *Backend) bootOf(ctx context.Context, spec vm.Spec) (storage.StemcellBoot, error) {
	doc, err := b.ReadMeta(ctx, spec.StemcellCID)
	if err != nil {
		return storage.StemcellBoot{}, fmt.Errorf("reading how stemcell '%s' boots: %w", spec.StemcellCID, err)
	}
	boot := storage.StemcellBoot{Firmware: vm.FirmwareBIOS, Delivery: string(b.profile.Delivery)}
	if doc.Boot != nil {
		boot = *doc.Boot
	}
	switch want := spec.Props.Firmware; {
	case want == "" || want == boot.Firmware:
	case want == vm.FirmwareBIOS:
		return storage.StemcellBoot{}, fmt.Errorf("VM cloud_properties ask for firmware 'bios', but stemcell '%s' boots with '%s' only (its OVF says so): %w", spec.StemcellCID, boot.Firmware, cpierr.ErrImpossible)
	default:
		boot.Firmware = want
	}
	return boot, nil
}

// replaceConfigDrive writes iso into the VM's config drive volume, sized
// to fit it exactly.
func (b *Backend) replaceConfigDrive(ctx context.Context, cid string, iso []byte) error {
	if _, err := b.lookupOwnedDomain(cid); err != nil {
		return fmt.Errorf("replacing config drive of VM '%s': %w", cid, err)
	}
	name := xmldef.ConfigDriveVolumeName(cid)
	vol, err := b.LookupVolume(ctx, name)
	if err != nil {
		return fmt.Errorf("replacing config drive of VM '%s': %w", cid, err)
	}
	if err := b.ResizeVolumeTo(vol, uint64(len(iso))); err != nil {
		return fmt.Errorf("replacing config drive of VM '%s': %w", cid, err)
	}
	if err := b.uploadConfigDrive(ctx, vol, iso); err != nil {
		return fmt.Errorf("replacing config drive of VM '%s': %w", cid, err)
	}
	b.log.Info("replaced config drive", "vm", cid, "bytes", len(iso))
	return nil
}

// explainStartFailure marks a start that failed for want of memory as
// impossible when the VM asks for more than the host has at all; less than
// that may pass once other VMs free memory, so it stays retryable.
func (b *Backend) explainStartFailure(spec vm.Spec, err error) error {
	if !strings.Contains(err.Error(), "Cannot allocate memory") {
		return err
	}
	_, hostKiB, _, _, _, _, _, _, infoErr := b.conn.NodeGetInfo()
	if infoErr != nil || uint64(spec.Props.MemoryMiB)*1024 <= hostKiB {
		return err
	}
	return fmt.Errorf("the VM asks for %d MiB of memory, the libvirt host has %d MiB in all: %w: %w", spec.Props.MemoryMiB, hostKiB/1024, err, cpierr.ErrImpossible)
}
