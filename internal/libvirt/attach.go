package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
)

// DetachTimeout bounds the wait for a guest to release a hot-unplugged
// disk. A PCIe unplug completes only when the guest OS acknowledges it;
// Linux's pciehp alone waits 5 s (the spec's abort window) before it
// does, and TCG guests are slow. A variable only so tests of a guest that
// never answers need not wait a minute.
var DetachTimeout = 60 * time.Second

// detachPollInterval is how often the live XML is read while waiting.
const detachPollInterval = 200 * time.Millisecond

// domainDisks is a domain's disks as libvirt sees them now (Live, nil
// when the domain is not running) and at its next start (Config).
type domainDisks struct {
	Dom     golibvirt.Domain
	Running bool
	Live    *libvirtxml.Domain
	Config  *libvirtxml.Domain
}

// readDomainDisks reads dom's persistent definition and, when it runs,
// its live one.
func (b *Backend) readDomainDisks(dom golibvirt.Domain) (domainDisks, error) {
	running, err := b.domainIsRunning(dom)
	if err != nil {
		return domainDisks{}, err
	}
	dd := domainDisks{Dom: dom, Running: running}
	if dd.Config, err = b.domainDefinition(dom, golibvirt.DomainXMLInactive); err != nil {
		return domainDisks{}, err
	}
	if running {
		if dd.Live, err = b.domainDefinition(dom, 0); err != nil {
			return domainDisks{}, err
		}
	}
	return dd, nil
}

// find returns the <disk> of d in the live and the persistent definition
// (nil where it is absent).
func (dd domainDisks) find(cid, volPath string) (live, config *libvirtxml.DomainDisk) {
	return xmldef.FindDisk(dd.Live, cid, volPath), xmldef.FindDisk(dd.Config, cid, volPath)
}

// usedTargets are the device names taken in either definition.
func (dd domainDisks) usedTargets() map[string]bool { return xmldef.UsedTargets(dd.Live, dd.Config) }

// diskUser is a VM of ours that uses a disk.
type diskUser struct {
	VM     string
	Live   bool // the running QEMU has it open
	Config bool // the definition has it (for the next start)
}

// diskUsers lists our VMs, other than skipVM, that use d, live or in
// their definition. A domain that vanishes during the scan is skipped.
func (b *Backend) diskUsers(d storage.Volume, skipVM string) ([]diskUser, error) {
	domains, err := b.ownedDomains()
	if err != nil {
		return nil, err
	}
	var users []diskUser
	for _, dom := range domains {
		if dom.Name == skipVM {
			continue
		}
		dd, err := b.readDomainDisks(dom.Domain)
		if err != nil {
			if cpierr.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("checking which VMs use disk '%s': %w", d.CID, err)
		}
		live, config := dd.find(d.CID, d.Path)
		// A container's disk is a filesystem, not a disk.
		inLive, inConfig := live != nil || hasFilesystem(dd.Live, d.Path), config != nil || hasFilesystem(dd.Config, d.Path)
		if inLive || inConfig {
			users = append(users, diskUser{VM: dom.Name, Live: inLive, Config: inConfig})
		}
	}
	return users, nil
}

// describeUsers says which VMs use a disk, for error messages.
func describeUsers(users []diskUser) string {
	parts := make([]string, 0, len(users))
	for _, u := range users {
		how := "attached to"
		if u.Live && !u.Config {
			how = "still held (pending hot-unplug) by"
		}
		parts = append(parts, fmt.Sprintf("%s VM '%s'", how, u.VM))
	}
	return strings.Join(parts, ", ")
}

// AttachDisk plugs the disk into the VM and records it in the VM's
// definition, so it stays across reboots and restarts: hot-plugged into
// a running domain, added to the definition of a stopped one, and returns
// the hypervisor's hint for it. Attaching a disk already attached to this
// VM returns its hint again; a disk another VM uses is ErrInUse. The CPI layer holds the VM's lock, so the free target
// chosen here cannot be taken by a parallel attach.
func (b *Backend) AttachDisk(ctx context.Context, vmCID, diskCID string) (disk.Hint, error) {
	if err := b.refused(hypervisor.OpAttachDisk, fmt.Sprintf("attaching disk '%s' to VM '%s'", diskCID, vmCID)); err != nil {
		return disk.Hint{}, err
	}
	if b.containers() {
		return b.attachContainerDisk(ctx, vmCID, diskCID)
	}
	target, profile, err := b.attachDisk(ctx, vmCID, diskCID)
	if err != nil {
		return disk.Hint{}, err
	}
	return profile.PersistentHint(diskCID, target), nil
}

// attachDisk attaches and returns the device target and the profile of
// the VM's devices (which the hint follows).
func (b *Backend) attachDisk(ctx context.Context, vmCID, diskCID string) (string, hypervisor.Profile, error) {
	dom, marker, err := b.lookupOwnedDomainMarker(vmCID)
	if err != nil {
		return "", hypervisor.Profile{}, fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	profile := b.profileOf(marker)
	target, err := b.attachDiskTo(ctx, dom, profile, vmCID, diskCID)
	return target, profile, err
}

// attachDiskTo attaches the disk to the VM's domain with the VM's profile.
func (b *Backend) attachDiskTo(ctx context.Context, dom golibvirt.Domain, profile hypervisor.Profile, vmCID, diskCID string) (string, error) {
	d, err := b.ownedDisk(ctx, diskCID)
	if err != nil {
		return "", fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	others, err := b.diskUsers(d, vmCID)
	if err != nil {
		return "", fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	if len(others) > 0 {
		return "", fmt.Errorf("attaching disk '%s' to VM '%s': it is %s: %w", diskCID, vmCID, describeUsers(others), cpierr.ErrInUse)
	}
	dd, err := b.readDomainDisks(dom)
	if err != nil {
		return "", fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	target, err := b.plugDisk(dd, profile, d)
	if err != nil {
		return "", fmt.Errorf("attaching disk '%s' to VM '%s': %w", diskCID, vmCID, err)
	}
	b.log.Info("attached disk", "disk", diskCID, "vm", vmCID, "target", target, "live", dd.Running)
	return target, nil
}

// plugDisk adds d to whichever of the live and persistent definitions
// lacks it (both, normally; one, when an earlier call half-succeeded) and
// returns its target.
func (b *Backend) plugDisk(dd domainDisks, profile hypervisor.Profile, d storage.Volume) (string, error) {
	live, config := dd.find(d.CID, d.Path)
	needLive := dd.Running && live == nil
	needConfig := config == nil
	target := ""
	switch {
	case config != nil && config.Target != nil:
		target = config.Target.Dev
	case live != nil && live.Target != nil:
		target = live.Target.Dev
	default:
		free, err := xmldef.FreeTarget(profile, dd.usedTargets())
		if err != nil {
			return "", err
		}
		target = free
	}
	if !needLive && !needConfig {
		return target, nil // already attached: attach_disk is idempotent
	}
	device, err := xmldef.PersistentDiskFor(profile, d.Path, d.Format, d.CID, target)
	if err != nil {
		return "", err
	}
	return target, b.attachDevice(dd.Dom, device, needLive, needConfig)
}

// attachDevice adds device live and/or to the definition in one libvirt
// call (libvirt saves the definition only when the live plug worked). If
// the domain stopped meanwhile, the definition alone is changed.
func (b *Backend) attachDevice(dom golibvirt.Domain, device libvirtxml.DomainDisk, live, config bool) error {
	doc, err := device.Marshal()
	if err != nil {
		return fmt.Errorf("building disk XML: %w", err)
	}
	err = b.conn.DomainAttachDeviceFlags(dom, doc, uint32(modifyFlags(live, config)))
	if err != nil && live && host.IsCode(err, golibvirt.ErrOperationInvalid) {
		if running, stateErr := b.domainIsRunning(dom); stateErr == nil && !running {
			if !config {
				return nil // stopped meanwhile, and the definition has it already
			}
			err = b.conn.DomainAttachDeviceFlags(dom, doc, uint32(golibvirt.DomainDeviceModifyConfig))
		}
	}
	if err != nil {
		return fmt.Errorf("plugging disk at target '%s' into domain '%s'%s: %w", device.Target.Dev, dom.Name, hotplugHint(err), host.Classify(err))
	}
	return nil
}

// hotplugHint explains the usual cause of a failed PCIe hot-plug.
func hotplugHint(err error) string {
	if strings.Contains(err.Error(), "PCI") && strings.Contains(err.Error(), "slot") {
		return " (no free PCIe root port: raise hotplug_slots; it applies to VMs created afterwards)"
	}
	return ""
}

func modifyFlags(live, config bool) golibvirt.DomainDeviceModifyFlags {
	var flags golibvirt.DomainDeviceModifyFlags
	if live {
		flags |= golibvirt.DomainDeviceModifyLive
	}
	if config {
		flags |= golibvirt.DomainDeviceModifyConfig
	}
	return flags
}

// ErrUnplugPending says the guest has not released a hot-unplugged disk.
var ErrUnplugPending = errors.New("the guest did not release the disk")

// DetachDisk removes the disk from the VM's definition and hot-unplugs it
// from the running domain, then waits (up to DetachTimeout) for the guest
// to release it. A guest that never acknowledges the unplug (no OS, hung)
// gets an error that says so; the disk is then already gone from the
// definition, so it is fully detached by the VM's next restart, and a
// retry waits again. ErrNotAttached when the VM does not have the disk.
func (b *Backend) DetachDisk(ctx context.Context, vmCID, diskCID string) error {
	if err := b.refused(hypervisor.OpDetachDisk, fmt.Sprintf("detaching disk '%s' from VM '%s'", diskCID, vmCID)); err != nil {
		return err
	}
	if b.containers() {
		return b.detachContainerDisk(ctx, vmCID, diskCID)
	}
	dom, err := b.lookupOwnedDomain(vmCID)
	if err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	volPath := b.diskPathIfExists(ctx, diskCID)
	dd, err := b.readDomainDisks(dom)
	if err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	live, config := dd.find(diskCID, volPath)
	if live == nil && config == nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, cpierr.ErrNotAttached)
	}
	started := time.Now()
	if err := b.unplugDisk(ctx, dd, live, config); err != nil {
		return fmt.Errorf("detaching disk '%s' from VM '%s': %w", diskCID, vmCID, err)
	}
	b.log.Info("detached disk", "disk", diskCID, "vm", vmCID, "live", live != nil,
		"seconds", fmt.Sprintf("%.2f", time.Since(started).Seconds()))
	return nil
}

// diskPathIfExists is the disk's volume path, or "" when it cannot be
// read: detach then finds the disk by its serial alone.
func (b *Backend) diskPathIfExists(ctx context.Context, cid string) string {
	vol, err := b.LookupVolume(ctx, cid)
	if err != nil {
		return ""
	}
	p, err := b.VolumePath(vol)
	if err != nil {
		return ""
	}
	return p
}

// unplugDisk drops the disk from the definition first (that part cannot
// hang), then unplugs it live and waits for the guest.
func (b *Backend) unplugDisk(ctx context.Context, dd domainDisks, live, config *libvirtxml.DomainDisk) error {
	if config != nil {
		if err := b.detachDevice(dd.Dom, *config, golibvirt.DomainDeviceModifyConfig); err != nil {
			return err
		}
	}
	if live == nil {
		return nil
	}
	if err := b.detachDevice(dd.Dom, *live, golibvirt.DomainDeviceModifyLive); err != nil {
		// A domain that stopped meanwhile has no live device left.
		if running, stateErr := b.domainIsRunning(dd.Dom); stateErr == nil && !running {
			return nil
		}
		if !isUnplugInProgress(err) {
			return err
		}
	}
	return b.waitForUnplug(ctx, dd.Dom, *live)
}

// detachDevice asks libvirt to remove device. For a live detach libvirt
// returns once QEMU has been asked (and waited a few seconds itself); the
// guest may release the device later.
func (b *Backend) detachDevice(dom golibvirt.Domain, device libvirtxml.DomainDisk, flags golibvirt.DomainDeviceModifyFlags) error {
	doc, err := device.Marshal()
	if err != nil {
		return fmt.Errorf("building disk XML: %w", err)
	}
	where := "definition"
	if flags&golibvirt.DomainDeviceModifyLive != 0 {
		where = "running domain"
	}
	if err := b.conn.DomainDetachDeviceFlags(dom, doc, uint32(flags)); err != nil {
		return fmt.Errorf("removing disk at target '%s' from the %s of '%s': %w", xmldef.TargetOf(device), where, dom.Name, host.Classify(err))
	}
	return nil
}

// isUnplugInProgress: a retried detach meets QEMU still waiting for the
// guest from the first one; waiting again is the right answer.
func isUnplugInProgress(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "already in the process of unplug") || strings.Contains(msg, "unplug already in progress")
}

// unplugRepeatInterval is how often an unanswered unplug is asked again.
// A guest still in its firmware or early boot loses the first request (its
// PCIe hot-plug driver is not up yet); asking again once it runs completes
// the detach. It must stay well above 5 s: QEMU refuses a repeat within 5 s,
// and Linux takes a second press inside its 5 s grace period as "cancel".
const unplugRepeatInterval = 15 * time.Second

// waitForUnplug polls the live XML until device is gone or DetachTimeout
// passes, repeating the unplug request every unplugRepeatInterval.
func (b *Backend) waitForUnplug(ctx context.Context, dom golibvirt.Domain, device libvirtxml.DomainDisk) error {
	deadline := time.Now().Add(DetachTimeout)
	nextRequest := time.Now().Add(unplugRepeatInterval)
	for {
		gone, err := b.liveDeviceGone(dom, device)
		if err != nil || gone {
			return err
		}
		if time.Now().After(nextRequest) {
			nextRequest = time.Now().Add(unplugRepeatInterval)
			if err := b.detachDevice(dom, device, golibvirt.DomainDeviceModifyLive); err != nil && !isUnplugInProgress(err) {
				b.log.Warn("repeating the unplug request failed", "vm", dom.Name, "target", xmldef.TargetOf(device), "error", err)
			} else {
				b.log.Info("guest has not released the disk yet: asked again", "vm", dom.Name, "target", xmldef.TargetOf(device))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w at target '%s' within %s (a PCIe unplug needs the guest OS to acknowledge it); "+
				"it is removed from the definition of '%s', so it is gone after the VM's next restart; retry the detach or restart the VM",
				ErrUnplugPending, xmldef.TargetOf(device), DetachTimeout, dom.Name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the guest of '%s' to release disk at target '%s': %w", dom.Name, xmldef.TargetOf(device), ctx.Err())
		case <-time.After(detachPollInterval):
		}
	}
}

// liveDeviceGone tells whether the running domain no longer has device
// (a domain that stopped has none).
func (b *Backend) liveDeviceGone(dom golibvirt.Domain, device libvirtxml.DomainDisk) (bool, error) {
	running, err := b.domainIsRunning(dom)
	if err != nil || !running {
		return !running, err
	}
	def, err := b.domainDefinition(dom, 0)
	if err != nil {
		return false, err
	}
	for _, d := range xmldef.DiskList(def) {
		if d.Serial == device.Serial && xmldef.TargetOf(d) == xmldef.TargetOf(device) {
			return false, nil
		}
	}
	return true, nil
}

// AttachedDisks lists the persistent disks of the VM: every disk whose
// volume is named like a disk CID, in its definition or (while a
// hot-unplug is pending) still in the running domain. Root, ephemeral and
// config drive volumes are never listed.
func (b *Backend) AttachedDisks(ctx context.Context, vmCID string) ([]string, error) {
	if b.containers() {
		return b.attachedContainerDisks(vmCID)
	}
	dom, err := b.lookupOwnedDomain(vmCID)
	if err != nil {
		return nil, fmt.Errorf("listing disks of VM '%s': %w", vmCID, err)
	}
	dd, err := b.readDomainDisks(dom)
	if err != nil {
		return nil, fmt.Errorf("listing disks of VM '%s': %w", vmCID, err)
	}
	return xmldef.PersistentDiskCIDs(dd.Config, dd.Live), nil
}
