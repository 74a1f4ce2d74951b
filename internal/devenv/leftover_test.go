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
