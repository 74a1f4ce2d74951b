package lxcsuite

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
)

// TestKilledContainerCreateIsSwept: a container create_vm ends its
// creation record as its last step; one killed after its domain started
// leaves the record, and the sweep then removes the domain, the mounted
// root and the record, but not a record younger than the safe age.
func TestKilledContainerCreateIsSwept(t *testing.T) {
	e := newTestEnv(t)
	sc := e.importRootfs(0)
	net1, gw1 := e.network(15)
	killed := spec(sc, [2]string{net1, "10.214.15.5"})
	e.createVM(killed, gw1)
	young := spec(sc, [2]string{net1, "10.214.15.6"})
	e.createVM(young, gw1)
	if records := e.creationRecords(); len(records) != 0 {
		t.Fatalf("creation records left by successful creates: %v", records)
	}
	e.plantRecord(storage.CreatingVolumeName(killed.CID, time.Now().Add(-time.Hour)))
	youngRecord := storage.CreatingVolumeName(young.CID, time.Now())
	e.plantRecord(youngRecord)

	swept, err := e.b.Sweep(e.ctx)
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if len(swept) != 1 || swept[0].CID != killed.CID {
		t.Errorf("swept %v; want only %s", swept, killed.CID)
	}
	if _, err := e.conn.DomainLookupByName(killed.CID); err == nil {
		t.Errorf("the killed create's domain %s is left", killed.CID)
	}
	if _, err := os.Stat(e.b.ContainerDir(killed.CID)); !os.IsNotExist(err) {
		t.Errorf("the killed create's container directory is left: %v", err)
	}
	if ok, err := e.b.HasVM(e.ctx, young.CID); !ok || err != nil {
		t.Errorf("has_vm of the VM with a young record = %v, %v; the sweep must leave it", ok, err)
	}
	if got := e.creationRecords(); !slices.Equal(got, []string{youngRecord}) {
		t.Errorf("creation records after the sweep: %v; want only %s", got, youngRecord)
	}
}

func (e *testEnv) plantRecord(name string) {
	e.t.Helper()
	if _, err := e.b.CreateVolume(e.ctx, storage.ThinVolume(name, storage.MiB, disk.FormatRaw)); err != nil {
		e.t.Fatalf("planting %s: %v", name, err)
	}
}

func (e *testEnv) creationRecords() []string {
	e.t.Helper()
	names, err := e.b.VolumeNames(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var records []string
	for _, n := range names {
		if strings.Contains(n, ".creating-") {
			records = append(records, n)
		}
	}
	return records
}
