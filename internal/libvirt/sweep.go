package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/atomicfile"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
)

// DefaultOrphanAge is how old a creation record must be before the sweep
// takes its objects as orphans: far longer than any create call runs, so
// a create in flight (on this host or another CPI's) is never touched.
const DefaultOrphanAge = 15 * time.Minute

// sweepLockWait bounds how long the sweep waits for a CID's lock: a CID
// whose lock is held has a call running on it, and is left for later.
const sweepLockWait = 50 * time.Millisecond

// SetOrphanAge lowers (or raises) the safe age of this backend's sweep;
// tests and `cpi doctor -orphanAge` use it.
func (b *Backend) SetOrphanAge(age time.Duration) { b.orphanAge = age }

func (b *Backend) safeAge() time.Duration {
	if b.orphanAge == 0 {
		return DefaultOrphanAge
	}
	return b.orphanAge
}

// Orphan is what a create call that never finished left: everything of
// CID, found through its creation record.
type Orphan struct {
	CID     string
	Kind    string
	Age     time.Duration
	Record  string   // the creation record's volume
	Volumes []string // the CID's volumes in the pool, the record's aside
}

func (o Orphan) String() string {
	return fmt.Sprintf("%s '%s', creation begun %s ago and never finished (volumes %s)",
		o.Kind, o.CID, o.Age.Round(time.Second), strings.Join(o.Volumes, ", "))
}

// Orphans lists the orphans in the pool: one list call, no download.
// Complete objects are never orphans (a detached disk is the director's).
func (b *Backend) Orphans(ctx context.Context) ([]Orphan, error) {
	names, err := b.VolumeNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("looking for orphans: %w", err)
	}
	var orphans []Orphan
	for _, name := range names {
		cid, since, ok := storage.ParseCreatingVolumeName(name)
		if !ok || time.Since(since) < b.safeAge() {
			continue
		}
		kind := kindOfCID(cid)
		if kind == "" {
			continue
		}
		o := Orphan{CID: cid, Kind: kind, Age: time.Since(since), Record: name}
		for _, v := range volumesOf(kind, cid) {
			if slices.Contains(names, v) {
				o.Volumes = append(o.Volumes, v)
			}
		}
		orphans = append(orphans, o)
	}
	return orphans, nil
}

// kindOfCID tells by its shape what a creation record's CID names.
func kindOfCID(cid string) string {
	switch {
	case strings.HasPrefix(cid, "vm-"):
		return storage.KindVM
	case strings.HasPrefix(cid, "snap-"):
		return storage.KindSnapshot
	case strings.HasPrefix(cid, "sc-"):
		return storage.KindStemcell
	case strings.HasPrefix(cid, "virtio-"), strings.HasPrefix(cid, "disk-"):
		return storage.KindDisk
	}
	return ""
}

// volumesOf are the volumes a create call of kind makes for cid.
func volumesOf(kind, cid string) []string {
	switch kind {
	case storage.KindVM:
		return xmldef.OwnedVolumeNames(cid)
	case storage.KindStemcell:
		return storage.StemcellVolumeNames(cid)
	}
	return []string{cid, storage.MetaVolumeName(cid)}
}

// Sweep removes the orphans, each under its CID's lock (a CID whose lock
// is held is busy and left for a later sweep), and returns what it
// removed.
func (b *Backend) Sweep(ctx context.Context) ([]Orphan, error) {
	orphans, err := b.Orphans(ctx)
	if err != nil {
		return nil, err
	}
	var swept []Orphan
	var errs []error
	for _, o := range orphans {
		done, err := b.sweepOne(ctx, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if done {
			b.log.Info("swept orphan", "cid", o.CID, "kind", o.Kind, "age_seconds", int(o.Age.Seconds()), "volumes", o.Volumes)
			swept = append(swept, o)
		}
	}
	return swept, errors.Join(errs...)
}

// sweepOrphans is the cheap sweep at the start of create_vm: a failure
// is logged, never fails the call.
func (b *Backend) sweepOrphans(ctx context.Context) {
	if _, err := b.Sweep(ctx); err != nil {
		b.log.Warn("sweeping orphans failed; the next create_vm or `cpi doctor --sweep` tries again", "error", err)
	}
}

// sweepOne removes one orphan; false when its CID is busy.
func (b *Backend) sweepOne(ctx context.Context, o Orphan) (bool, error) {
	lockCtx, cancel := context.WithTimeout(ctx, sweepLockWait)
	unlock, err := b.locks.Lock(lockCtx, o.CID)
	cancel()
	if err != nil {
		b.log.Info("orphan busy: its CID is locked by a running call; left for later", "cid", o.CID)
		return false, nil
	}
	defer unlock()
	if o.Kind == storage.KindVM {
		if err := b.sweepVM(ctx, o.CID); err != nil {
			return false, fmt.Errorf("sweeping orphan VM '%s': %w", o.CID, err)
		}
	}
	if err := b.DeleteVolumes(ctx, append(volumesOf(o.Kind, o.CID), o.Record)...); err != nil {
		return false, fmt.Errorf("sweeping orphan %s '%s': %w", o.Kind, o.CID, err)
	}
	return true, nil
}

// sweepVM removes the VM's domain when it is ours (a create killed after
// defining it: the director never heard of it), else only its files.
func (b *Backend) sweepVM(ctx context.Context, cid string) error {
	err := b.DeleteVM(ctx, cid)
	if err != nil && !cpierr.IsNotFound(err) {
		return err
	}
	// A container create killed before its domain was defined leaves its
	// root directory (DeleteVM removes it only with the domain).
	if b.containers() {
		if err := b.removeContainerRoot(cid); err != nil {
			return err
		}
	}
	if b.consoleInStoreDir() {
		if err := removeConsoleLog(b.consoleLogPath(cid)); err != nil {
			return err
		}
	}
	// The settings the CPI saves beside a VM once its domain runs, with
	// what a write killed before its rename left.
	for _, name := range []string{cid + ".json", cid + ".ssh_public_key"} {
		if err := atomicfile.Remove(filepath.Join(b.cfg.VMDir(), name)); err != nil {
			return fmt.Errorf("removing '%s': %w", name, err)
		}
	}
	return nil
}

// OrphanFindings is doctor's view of the orphans: one warning per orphan
// (with sweep, they are removed and reported as such).
func OrphanFindings(ctx context.Context, cfg config.Config, log *slog.Logger, age time.Duration, sweep bool) []doctor.Finding {
	const check = "orphans"
	b, err := Open(ctx, cfg, log)
	if err != nil {
		return []doctor.Finding{{Check: check, Status: doctor.Fail, Detail: err.Error()}}
	}
	defer b.Close()
	b.SetOrphanAge(age)
	list := b.Orphans
	if sweep {
		list = b.Sweep
	}
	orphans, err := list(ctx)
	var findings []doctor.Finding
	for _, o := range orphans {
		if sweep {
			findings = append(findings, doctor.Finding{Check: check, Status: doctor.OK, Detail: "swept " + o.String()})
			continue
		}
		findings = append(findings, doctor.Finding{Check: check, Status: doctor.Warn, Detail: o.String(), Fix: "cpi doctor -sweep -configPath <cpi.json>"})
	}
	if err != nil {
		findings = append(findings, doctor.Finding{Check: check, Status: doctor.Fail, Detail: err.Error()})
	}
	if len(findings) == 0 {
		findings = append(findings, doctor.Finding{Check: check, Status: doctor.OK, Detail: fmt.Sprintf("no orphans older than %s", b.safeAge())})
	}
	return findings
}
