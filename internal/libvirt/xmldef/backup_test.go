package xmldef

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

func TestBackupCopiesOnlyTheDisk(t *testing.T) {
	live := domainWith(append(vmDisks(),
		PersistentDiskDevice(pool+diskA, disk.FormatQcow2, diskA, "vdc"),
		PersistentDiskDevice(pool+diskB, disk.FormatRaw, diskB, "vdd"))...)
	doc, err := Backup(live, diskB, pool+diskB, disk.FormatRaw, pool+"snap-x")
	if err != nil {
		t.Fatal(err)
	}
	var parsed libvirtxml.DomainBackup
	if err := parsed.Unmarshal(doc); err != nil {
		t.Fatalf("backup XML does not parse: %v\n%s", err, doc)
	}
	if parsed.Push == nil || parsed.Push.Disks == nil {
		t.Fatalf("not a push backup: %s", doc)
	}
	backedUp := 0
	for _, pd := range parsed.Push.Disks.Disks {
		switch {
		case pd.Name == "vdd":
			backedUp++
			if pd.Backup != "yes" || pd.Target == nil || pd.Target.File == nil || pd.Target.File.File != pool+"snap-x" || pd.Driver.Type != "raw" {
				t.Errorf("vdd entry %+v, want backup to %s as raw", pd, pool+"snap-x")
			}
		case pd.Backup != "no":
			t.Errorf("disk %s would be backed up too", pd.Name)
		}
	}
	if backedUp != 1 || len(parsed.Push.Disks.Disks) != 5 {
		t.Errorf("%d disks listed, %d backed up; want all 5 listed, 1 backed up:\n%s", len(parsed.Push.Disks.Disks), backedUp, doc)
	}
}

func TestBackupRefusesADiskNoLongerLive(t *testing.T) {
	if _, err := Backup(domainWith(vmDisks()...), diskA, pool+diskA, disk.FormatQcow2, pool+"snap-x"); err == nil || !strings.Contains(err.Error(), "no longer") {
		t.Errorf("got %v, want an error that the disk is gone", err)
	}
}
