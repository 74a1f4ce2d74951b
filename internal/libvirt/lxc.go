package libvirt

// Containers (profiles whose root is a filesystem: libvirt's lxc driver).
// A stemcell is its root filesystem unpacked once into
// <store_dir>/lxc/stemcells/<cid>; a VM's root is an overlayfs of it under
// a writable layer of the VM's own in <store_dir>/lxc/vms/<cid>, which the
// CPI mounts and libvirt runs the container in. Both are directories on
// the CPI's machine, so they need the libvirt host to be this one: on a
// remote host (lxc+ssh://) stemcells, VMs and disks are refused as
// NotSupported, naming the driver. Everything else (domain, marker,
// metadata, networks, has_vm, reboot) is the runtime's common code.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/faults"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/rootfs"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// containers tells whether this host's VMs are containers.
func (b *Backend) containers() bool { return b.profile.Root == hypervisor.RootFilesystem }

func (b *Backend) lxcDir() string { return filepath.Join(b.cfg.StoreDir, "lxc") }

// StemcellRoot is where stemcell cid's root filesystem is unpacked.
func (b *Backend) StemcellRoot(cid string) string {
	return filepath.Join(b.lxcDir(), "stemcells", cid)
}

// ContainerDir holds VM cid's writable layer and merged root.
func (b *Backend) ContainerDir(cid string) string { return filepath.Join(b.lxcDir(), "vms", cid) }

// requireLocalHost refuses what needs the libvirt host's filesystem when
// libvirtd runs on another machine.
func (b *Backend) requireLocalHost(what string) error {
	if host.IsLocal(b.cfg.URI) {
		return nil
	}
	return fmt.Errorf("%s on libvirt's %s driver needs the libvirt host to be this machine (the root filesystem is a directory this CPI unpacks and mounts), but '%s' is remote: %w",
		what, b.profile.Driver, b.cfg.URI, cpierr.ErrNotSupported)
}

// ImportStemcell stores the stemcell: for QEMU a pool volume, for a
// container host its root filesystem unpacked into a directory.
func (b *Backend) ImportStemcell(ctx context.Context, cid string, img *stemcell.Image) error {
	if err := b.refused(hypervisor.OpImportStemcell, fmt.Sprintf("importing stemcell '%s'", cid)); err != nil {
		return err
	}
	if !b.containers() {
		return b.Pool.ImportStemcell(ctx, cid, img)
	}
	if err := b.requireLocalHost("importing stemcell '" + cid + "'"); err != nil {
		return err
	}
	if img.Format != stemcell.FormatRootfsTar {
		return fmt.Errorf("importing stemcell '%s': libvirt's %s driver runs root filesystem stemcells (warden-tar, general-tar), not %s: %w",
			cid, b.profile.Driver, img.StemcellFormat, cpierr.ErrNotSupported)
	}
	started := time.Now()
	dest := b.StemcellRoot(cid)
	// Unpacked beside its final name and renamed when complete: a killed
	// import leaves only a directory named for this process, which a later
	// import removes once the process is gone.
	partial := fmt.Sprintf("%s.partial-%d", dest, os.Getpid())
	b.removeDeadPartials(filepath.Dir(dest))
	if err := os.MkdirAll(partial, 0o755); err != nil {
		return fmt.Errorf("importing stemcell '%s': %w", cid, err)
	}
	tarStream, err := stemcell.Decompressed(img.Reader)
	if err == nil {
		err = rootfs.Unpack(tarStream, partial)
	}
	if err == nil {
		err = os.Rename(partial, dest)
	}
	if err != nil {
		_ = os.RemoveAll(partial)
		return fmt.Errorf("importing stemcell '%s': %w", cid, err)
	}
	b.log.Info("imported stemcell", "stemcell", cid, "format", img.StemcellFormat, "dir", dest,
		"seconds", fmt.Sprintf("%.2f", time.Since(started).Seconds()))
	return nil
}

// removeDeadPartials removes unpack directories of import processes that
// are gone (killed mid-import).
func (b *Backend) removeDeadPartials(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_, pid, ok := strings.Cut(e.Name(), ".partial-")
		if !ok {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); errors.Is(err, os.ErrNotExist) {
			b.log.Info("removing the unpack directory of a killed stemcell import", "dir", e.Name())
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// deleteRootfsStemcell removes a container stemcell's directory; refused
// while a VM's root is layered on it.
func (b *Backend) deleteRootfsStemcell(cid string) error {
	dir := b.StemcellRoot(cid)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting stemcell '%s': %w", cid, cpierr.ErrNotFound)
	}
	users, err := b.vmsUsingStemcell(cid)
	if err != nil {
		return fmt.Errorf("deleting stemcell '%s': %w", cid, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("deleting stemcell '%s': still the lower layer of the root of VMs %v: %w", cid, users, cpierr.ErrInUse)
	}
	// Renamed first, so a delete killed half way leaves no half stemcell
	// under its CID; the next import's sweep finds no such name, so the
	// rest is removed here or by a repeated delete (same name).
	doomed := dir + ".deleting"
	if err := os.Rename(dir, doomed); err != nil {
		return fmt.Errorf("deleting stemcell '%s': %w", cid, err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("deleting stemcell '%s': %w", cid, err)
	}
	b.log.Info("deleted stemcell", "stemcell", cid)
	return nil
}

// createContainerVM is CreateVM for a container host: the root overlay,
// the settings file in it, the domain; undone whole on failure.
func (b *Backend) createContainerVM(ctx context.Context, spec vm.Spec, settings agentsettings.Settings) (_ agentsettings.Settings, err error) {
	if err := b.requireLocalHost("creating VM '" + spec.CID + "'"); err != nil {
		return agentsettings.Settings{}, err
	}
	spec, settings, err = b.profile.CompleteVM(spec, settings)
	if err != nil {
		return agentsettings.Settings{}, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	var undo undoList
	defer func() {
		if err != nil {
			b.log.Warn("create_vm failed, removing what it made", "vm", spec.CID, "error", err)
			b.ReconnectIfLost(ctx)
			undo.run()
		}
	}()
	started := time.Now()
	fail := func(err error) (agentsettings.Settings, error) {
		return agentsettings.Settings{}, fmt.Errorf("creating VM '%s': %w", spec.CID, err)
	}
	if err := xmldef.ValidateNICs(spec.NICs); err != nil {
		return fail(err)
	}
	b.sweepOrphanContainerDirs()
	finish, err := b.beginVM(ctx, spec.CID, &undo)
	if err != nil {
		return fail(err)
	}
	lower := b.StemcellRoot(spec.StemcellCID)
	if _, err := os.Stat(lower); err != nil {
		return fail(fmt.Errorf("stemcell '%s' has no root filesystem at '%s': %w", spec.StemcellCID, lower, cpierr.ErrNotFound))
	}
	if err := b.ensureNetworks(ctx, spec.NICs); err != nil {
		return fail(err)
	}
	plan := xmldef.NewPlan(spec, b.profile, b.profile.DomainType, "", 0, "")
	if plan.Addresses, err = staticAddresses(spec.NICs, settings.Networks); err != nil {
		return fail(err)
	}
	if plan.Filesystems, err = b.containerDiskFilesystems(ctx, spec.Disks); err != nil {
		return fail(err)
	}
	dir := b.ContainerDir(spec.CID)
	undo.push(func() {
		if err := rootfs.Remove(dir); err != nil {
			b.log.Error("could not remove the container directory after a failure; remove it by hand", "vm", spec.CID, "error", err)
		}
	})
	if err := b.prepareContainerRoot(spec.StemcellCID, dir, settings); err != nil {
		return fail(err)
	}
	plan.RootDir = rootfs.Root(dir)
	dom, err := b.defineDomain(plan, &undo)
	if err != nil {
		return fail(err)
	}
	if err := b.conn.DomainCreate(dom); err != nil {
		return fail(fmt.Errorf("starting container: %w", host.Classify(err)))
	}
	// A record left behind would have the sweep take a VM the director
	// knows: failing to end it fails the call, whose undo removes the VM.
	if err := finish(); err != nil {
		return fail(err)
	}
	b.log.Info("created VM", "stemcell", spec.StemcellCID, "cpus", spec.Props.CPUs, "memory_mib", spec.Props.MemoryMiB,
		"nics", len(spec.NICs), "disks", len(spec.Disks), "seconds", fmt.Sprintf("%.2f", time.Since(started).Seconds()))
	return settings, nil
}

// orphanAge is how old a container directory without a domain must be
// before it is taken for the leftover of a killed create_vm: a create in
// progress has its directory for well under a second before its domain.
const orphanAge = 10 * time.Minute

// sweepOrphanContainerDirs removes container directories whose create_vm
// was killed before its domain was defined (or whose undo was cut off):
// no domain of that name exists and the directory is older than
// orphanAge. Only names under this CPI's own store directory are looked at.
func (b *Backend) sweepOrphanContainerDirs() {
	parent := filepath.Join(b.lxcDir(), "vms")
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !vm.ValidCID(e.Name()) || time.Since(info.ModTime()) < orphanAge {
			continue
		}
		if _, err := b.conn.DomainLookupByName(e.Name()); !cpierr.IsNotFound(host.Classify(err)) {
			continue // it has its domain, or libvirt could not say
		}
		b.log.Info("removing the container directory of a VM that has no domain (a killed create_vm)", "vm", e.Name())
		if err := rootfs.Remove(filepath.Join(parent, e.Name())); err != nil {
			b.log.Warn("could not remove an orphaned container directory", "vm", e.Name(), "error", err)
		}
	}
}

// prepareContainerRoot mounts the VM's root and puts in it what the
// agent needs before init runs: the settings file and the directories of
// the ephemeral disk and the disk hints.
func (b *Backend) prepareContainerRoot(stemcellCID, dir string, settings agentsettings.Settings) error {
	if err := rootfs.Mount(b.StemcellRoot(stemcellCID), dir); err != nil {
		return err
	}
	root := rootfs.Root(dir)
	for _, d := range []string{b.profile.EphemeralDir, b.profile.DiskHintDir} {
		if err := rootfs.MkdirAll(root, d); err != nil {
			return err
		}
	}
	return b.writeContainerSettings(root, settings)
}

// writeContainerSettings writes the settings file (0600: it holds the
// mbus credentials; its content is never logged).
func (b *Backend) writeContainerSettings(root string, settings agentsettings.Settings) error {
	if faults.Active(faults.OmitSettingsFile) {
		return nil
	}
	body, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encoding agent settings: %w", err)
	}
	if err := rootfs.WriteFile(root, b.profile.SettingsPath, body, 0o600); err != nil {
		return fmt.Errorf("writing agent settings: %w", err)
	}
	return nil
}

// staticAddresses are the addresses libvirt puts on the NICs of manual
// networks (a warden agent configures no network), with the default
// route on the network the settings make the default gateway.
func staticAddresses(nics []vm.NIC, networks map[string]agentsettings.Network) (map[string]xmldef.NICAddress, error) {
	out := map[string]xmldef.NICAddress{}
	for _, nic := range nics {
		n := networks[nic.BOSHNetwork]
		if nic.IP == "" || n.Type == "dynamic" || n.UseDHCP {
			continue
		}
		mask := net.ParseIP(n.Netmask).To4()
		if mask == nil {
			return nil, fmt.Errorf("network '%s': netmask '%s' is not an IPv4 netmask", nic.BOSHNetwork, n.Netmask)
		}
		ones, bits := net.IPMask(mask).Size()
		if bits == 0 {
			return nil, fmt.Errorf("network '%s': netmask '%s' is not contiguous", nic.BOSHNetwork, n.Netmask)
		}
		addr := xmldef.NICAddress{IP: nic.IP, Prefix: uint(ones)}
		if slices.Contains(n.Default, "gateway") {
			addr.Gateway = n.Gateway
		}
		out[strings.ToLower(nic.MAC)] = addr
	}
	return out, nil
}

// removeContainerRoot unmounts and removes a deleted VM's directory.
func (b *Backend) removeContainerRoot(cid string) error {
	return rootfs.Remove(b.ContainerDir(cid))
}

// beforeStart makes sure a container's root is mounted before libvirt
// starts it again (reboot_vm, a restart for a disk): the overlay does not
// survive a reboot of the host.
func (b *Backend) beforeStart(dom golibvirt.Domain) error {
	if !b.containers() {
		return nil
	}
	marker, err := b.readMarker(dom)
	if err != nil {
		return err
	}
	return rootfs.Mount(b.StemcellRoot(marker.StemcellCID), b.ContainerDir(dom.Name))
}

// requestShutdown asks the guest to stop: ACPI for a VM; SIGTERM to a
// container's init (the lxc driver's default, /dev/initctl, reaches only
// a SysV init: a warden stemcell's init never got it).
func (b *Backend) requestShutdown(dom golibvirt.Domain) error {
	if b.containers() {
		return b.conn.DomainShutdownFlags(dom, golibvirt.DomainShutdownSignal)
	}
	return b.conn.DomainShutdown(dom)
}

// updateContainerSettings rewrites the settings file in a container's
// root (the agent reads it again at its next start).
func (b *Backend) updateContainerSettings(cid string, settings agentsettings.Settings) error {
	dom, err := b.lookupOwnedDomain(cid)
	if err != nil {
		return fmt.Errorf("updating settings of VM '%s': %w", cid, err)
	}
	if err := b.beforeStart(dom); err != nil {
		return fmt.Errorf("updating settings of VM '%s': %w", cid, err)
	}
	if err := b.writeContainerSettings(rootfs.Root(b.ContainerDir(cid)), settings); err != nil {
		return fmt.Errorf("updating settings of VM '%s': %w", cid, err)
	}
	return nil
}

// filesystemsOf are the domain's <filesystem> elements (none of a nil
// definition).
func filesystemsOf(def *libvirtxml.Domain) []libvirtxml.DomainFilesystem {
	if def == nil || def.Devices == nil {
		return nil
	}
	return def.Devices.Filesystems
}
