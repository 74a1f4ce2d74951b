package devenv

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

func TestLeftOverFilesAcceptKeptConsoleLogsOnly(t *testing.T) {
	store := t.TempDir()
	cid := vm.NewCID()
	kept := vm.KeptConsoleLogName(cid, time.Now())
	files := []string{
		"console/" + vm.NewCID() + ".log", // a live VM's log
		"vms/" + cid + ".json",
		"console/deleted/" + kept,
		"console/deleted/stray.log",
	}
	for _, f := range files {
		p := filepath.Join(store, f)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(store, "console", "deleted", cid+"-20261201T000000.000Z.log"), 0o700) // a directory, not a log
	got := leftOverFiles(store)
	want := []string{"file " + files[0], "file " + files[1], "file console/deleted/" + cid + "-20261201T000000.000Z.log", "file " + files[3]}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("leftOverFiles = %v; want %v", got, want)
	}
}

// TestVolumeTable reads virsh 9's vol-list table (it has no --name), and
// refuses output that is no table rather than answer "no volumes".
func TestVolumeTable(t *testing.T) {
	out := ` Name                                           Path
-----------------------------------------------------------------------------------------------------------------------------------------------
 virtio-luinhib3r37q4                           /tmp/run/pool/virtio-luinhib3r37q4
 vm-53ec347a-e350-46de-a3d9-9fe7a9210c63-root   /tmp/run/pool/vm-53ec347a-e350-46de-a3d9-9fe7a9210c63-root

`
	got, err := volumeTable(out)
	if want := []string{"virtio-luinhib3r37q4", "vm-53ec347a-e350-46de-a3d9-9fe7a9210c63-root"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("volumeTable = %v, %v; want %v", got, err, want)
	}
	empty := " Name   Path\n------------------\n\n"
	if got, err := volumeTable(empty); err != nil || len(got) != 0 {
		t.Fatalf("volumeTable of an empty pool = %v, %v; want none", got, err)
	}
	if _, err := volumeTable("error: command 'vol-list' doesn't support option --name"); err == nil {
		t.Fatal("volumeTable of an error message answered no error")
	}
}
