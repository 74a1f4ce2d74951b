package suite

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// plantVolume makes a volume straight through the pool, as someone other
// than the CPI's calls would: no ownership record.
func (e *testEnv) plantVolume(name string, format disk.Format) {
	e.t.Helper()
	if _, err := e.b.CreateVolume(context.Background(), storage.ThinVolume(name, 4*storage.MiB, format)); err != nil {
		e.t.Fatalf("planting volume %s: %v", name, err)
	}
}

func (e *testEnv) assertVolumes(present bool, names ...string) {
	e.t.Helper()
	all := e.volumeNames()
	for _, n := range names {
		if slices.Contains(all, n) != present {
			e.t.Errorf("volume %s: present=%v, want %v (pool holds %v)", n, !present, present, all)
		}
	}
}

// TestForeignVolumesOfOurShapeAreRefused: a volume named like a disk,
// snapshot or stemcell of ours but without our ownership record looks
// absent to every method, and is left as it is.
func TestForeignVolumesOfOurShapeAreRefused(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	dom := e.diskTestDomain(stoppedFirmware)
	foreignDisk, foreignSnap, foreignStemcell := disk.NewCID(), disk.NewSnapshotCID(), stemcell.NewCID()
	e.plantVolume(foreignDisk, disk.FormatQcow2)
	e.plantVolume(foreignSnap, disk.FormatQcow2)
	e.plantVolume(foreignStemcell, disk.FormatQcow2)

	if has, err := e.b.HasDisk(ctx, foreignDisk); err != nil || has {
		t.Errorf("HasDisk of a foreign volume = %v, %v; want false", has, err)
	}
	_, attachErr := e.attach(ctx, dom.Name, foreignDisk)
	_, holdersErr := e.b.DiskHolders(ctx, foreignDisk)
	_, getErr := e.b.GetDiskMetadata(ctx, foreignDisk)
	for _, c := range []struct {
		what string
		err  error
	}{
		{"ResizeDisk", e.b.ResizeDisk(ctx, foreignDisk, 8)},
		{"SnapshotDisk", e.b.SnapshotDisk(ctx, foreignDisk, disk.NewSnapshotCID(), nil)},
		{"AttachDisk", attachErr},
		{"DiskHolders", holdersErr},
		{"SetDiskMetadata", e.b.SetDiskMetadata(ctx, foreignDisk, disk.Metadata{"k": "v"})},
		{"GetDiskMetadata", getErr},
		{"DeleteDisk", e.b.DeleteDisk(ctx, foreignDisk)},
		{"DeleteSnapshot", e.b.DeleteSnapshot(ctx, foreignSnap)},
		{"DeleteStemcell", e.b.DeleteStemcell(ctx, foreignStemcell)},
	} {
		wantErr(t, c.what+" of a foreign volume", c.err, cpierr.ErrNotFound)
		if c.err != nil && !strings.Contains(c.err.Error(), "not made by this CPI") {
			t.Errorf("%s: error %q does not say the volume is not ours", c.what, c.err)
		}
	}
	spec := e.vmSpec(foreignStemcell, e.isolatedNetwork())
	wantErr(t, "CreateVM on a foreign stemcell", e.createVM(e.b, &spec), cpierr.ErrNotFound)
	e.assertVolumes(true, foreignDisk, foreignSnap, foreignStemcell)
	e.assertVolumes(false, storage.MetaVolumeName(foreignDisk), storage.MetaVolumeName(foreignStemcell))
	if d := e.domainXML(dom, 0); slices.ContainsFunc(d.Devices.Disks, func(dd libvirtxml.DomainDisk) bool {
		return dd.Source != nil && dd.Source.File != nil && strings.Contains(dd.Source.File.File, foreignDisk)
	}) {
		t.Errorf("the foreign volume was attached to %s", dom.Name)
	}
}

// plantCreationRecord leaves what a create call killed at 'since' leaves:
// its creation record and the volumes named.
func (e *testEnv) plantCreationRecord(cid string, since time.Time, volumes ...string) string {
	e.t.Helper()
	record := storage.CreatingVolumeName(cid, since)
	e.plantVolume(record, disk.FormatRaw)
	for _, v := range volumes {
		e.plantVolume(v, disk.FormatQcow2)
	}
	return record
}

// TestSweepRemovesOrphansOnly: create_vm's first step and doctor's sweep
// remove what create calls older than the safe age left, a VM the
// director never heard of included, and nothing else: not a creation in
// flight, not a complete disk.
func TestSweepRemovesOrphansOnly(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	scCID := e.importStemcell(1 << 30)
	netName := e.isolatedNetwork()
	old := time.Now().Add(-time.Hour)

	// A create_vm killed before its domain was defined.
	vmCID := vm.NewCID()
	vmVolumes := xmldef.OwnedVolumeNames(vmCID)
	vmRecord := e.plantCreationRecord(vmCID, old, vmVolumes...)
	// A create_disk killed after its sidecar and data were made.
	diskCID := disk.NewCID()
	diskRecord := e.plantCreationRecord(diskCID, old, diskCID, storage.MetaVolumeName(diskCID))
	// A create_stemcell of a vSphere stemcell killed during its VMDK's
	// conversion: the sidecar, the staging VMDK and the half-made qcow2.
	ovfCID := stemcell.NewCID()
	ovfVolumes := storage.StemcellVolumeNames(ovfCID)
	ovfRecord := e.plantCreationRecord(ovfCID, old, ovfVolumes...)
	// A create_vm killed after its domain started: made for real, then
	// its record put back as the kill would have left it.
	running := e.vmSpec(scCID, netName)
	if err := e.createVM(e.b, &running); err != nil {
		t.Fatal(err)
	}
	e.trackDomain(running.CID)
	runningRecord := e.plantCreationRecord(running.CID, old)
	// A create in flight (younger than the safe age) and a complete disk.
	freshCID := vm.NewCID()
	freshRecord := e.plantCreationRecord(freshCID, time.Now(), xmldef.RootVolumeName(freshCID))
	complete := e.newDisk(4, disk.FormatQcow2)

	next := e.vmSpec(scCID, netName)
	if err := e.createVM(e.b, &next); err != nil {
		t.Fatalf("CreateVM: %v", err)
	}
	e.trackDomain(next.CID)
	e.assertVolumes(false, slices.Concat(vmVolumes, ovfVolumes, []string{vmRecord, diskRecord, diskCID, storage.MetaVolumeName(diskCID), runningRecord, ovfRecord})...)
	e.assertNothingLeftOf(running.CID)
	e.assertVolumes(true, freshRecord, xmldef.RootVolumeName(freshCID), complete, storage.MetaVolumeName(complete))
	e.assertVolumes(true, xmldef.OwnedVolumeNames(next.CID)...)
	if has, err := e.b.HasVM(ctx, next.CID); err != nil || !has {
		t.Errorf("the VM create_vm made is not there: %v, %v", has, err)
	}

	// doctor lists an orphan, then -sweep removes it; the fresh one is an
	// orphan only once the safe age is lowered below its age.
	snapCID := disk.NewSnapshotCID()
	snapRecord := e.plantCreationRecord(snapCID, old, snapCID)
	listed := libvirt.OrphanFindings(ctx, e.cfg, e.log, libvirt.DefaultOrphanAge, false)
	if len(listed) != 1 || listed[0].Status != doctor.Warn || !strings.Contains(listed[0].Detail, snapCID) {
		t.Errorf("doctor lists %+v, want one warning naming %s", listed, snapCID)
	}
	e.assertVolumes(true, snapRecord, snapCID)
	time.Sleep(1100 * time.Millisecond) // the record's time is in whole seconds
	swept := libvirt.OrphanFindings(ctx, e.cfg, e.log, time.Second, true)
	if len(swept) != 2 {
		t.Errorf("doctor -sweep reports %+v, want the snapshot and the fresh VM swept", swept)
	}
	e.assertVolumes(false, snapRecord, snapCID, freshRecord, xmldef.RootVolumeName(freshCID))
	e.assertVolumes(true, complete, storage.MetaVolumeName(complete))
	e.assertVolumes(true, xmldef.OwnedVolumeNames(next.CID)...)
	if err := e.b.DeleteVM(ctx, next.CID); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyObjectsAreAdopted: what an earlier version made keeps working
// when it can be proved ours: a version 1 sidecar; a disk or stemcell
// without one that one of our VMs uses (its record is written then).
func TestLegacyObjectsAreAdopted(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()

	withSidecar := disk.LegacyCID()
	e.plantVolume(withSidecar, disk.FormatQcow2)
	legacyDoc := []byte(`{"version":1,"metadata":{"director":"old"}}`)
	meta, err := e.b.CreateVolume(ctx, storage.ThinVolume(storage.MetaVolumeName(withSidecar), 4096, disk.FormatRaw))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.UploadVolume(ctx, meta, bytes.NewReader(append(legacyDoc, bytes.Repeat([]byte(" "), 4096-len(legacyDoc))...)), 4096); err != nil {
		t.Fatal(err)
	}
	if has, err := e.b.HasDisk(ctx, withSidecar); err != nil || !has {
		t.Errorf("HasDisk of a legacy disk with a version 1 sidecar = %v, %v", has, err)
	}
	if got, err := e.b.GetDiskMetadata(ctx, withSidecar); err != nil || got["director"] != "old" {
		t.Errorf("GetDiskMetadata of a legacy disk = %v, %v", got, err)
	}

	// A disk in use by one of our VMs, its sidecar gone as before records.
	scCID := e.importStemcell(1 << 30)
	spec := e.vmSpec(scCID, e.isolatedNetwork())
	attached := e.newDisk(4, disk.FormatQcow2)
	spec.Disks = []vm.AttachedDisk{{DiskCID: attached, Target: "vdc"}}
	if err := e.createVM(e.b, &spec); err != nil {
		t.Fatal(err)
	}
	e.trackDomain(spec.CID)
	for _, cid := range []string{attached, scCID} {
		if err := e.b.DeleteMeta(ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	if has, err := e.b.HasDisk(ctx, attached); err != nil || !has {
		t.Errorf("HasDisk of a legacy disk our VM uses = %v, %v", has, err)
	}
	wantErr(t, "DeleteStemcell of a legacy stemcell our VM uses", e.b.DeleteStemcell(ctx, scCID), cpierr.ErrInUse)
	e.assertVolumes(true, storage.MetaVolumeName(attached))
	if doc, err := e.b.ReadMeta(ctx, attached); err != nil || doc.Owner == nil || !doc.Owner.Adopted {
		t.Errorf("the adopted disk's record = %+v, %v; want an adopted owner", doc.Owner, err)
	}
	if err := e.b.DeleteVM(ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	for _, cid := range []string{withSidecar, attached} {
		if err := e.b.DeleteDisk(ctx, cid); err != nil {
			t.Errorf("DeleteDisk of adopted disk %s: %v", cid, err)
		}
	}
}
