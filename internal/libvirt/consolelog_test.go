package libvirt

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

func TestKeepConsoleLogMovesItAsideBounded(t *testing.T) {
	consoleDir := t.TempDir()
	keptDir := vm.KeptConsoleDir(consoleDir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var cids []string
	for i := 0; i < vm.KeptConsoleLogs+3; i++ {
		cid := vm.NewCID()
		cids = append(cids, cid)
		live := filepath.Join(consoleDir, cid+".log")
		if err := os.WriteFile(live, []byte("boot of "+cid+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := keepConsoleLog(quiet, live, cid, start.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(live); !os.IsNotExist(err) {
			t.Fatalf("the live console log %s is still there: %v", live, err)
		}
		kept := filepath.Join(keptDir, vm.KeptConsoleLogName(cid, start.Add(time.Duration(i)*time.Minute)))
		if raw, err := os.ReadFile(kept); err != nil || !strings.Contains(string(raw), cid) {
			t.Fatalf("kept log %s: %q, %v", kept, raw, err)
		}
	}
	foreign := filepath.Join(keptDir, "operator-notes.txt")
	os.WriteFile(foreign, []byte("mine"), 0o600)
	// A VM whose QEMU never wrote a log: nothing to keep, no error.
	if err := keepConsoleLog(quiet, filepath.Join(consoleDir, "vm-none.log"), "vm-none", start); err != nil {
		t.Fatal(err)
	}

	var left []string
	entries, _ := os.ReadDir(keptDir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if len(left) != vm.KeptConsoleLogs+1 || !slices.Contains(left, "operator-notes.txt") {
		t.Fatalf("kept dir holds %v; want the newest %d logs and the foreign file", left, vm.KeptConsoleLogs)
	}
	for _, cid := range cids[:3] {
		for _, name := range left {
			if strings.HasPrefix(name, cid) {
				t.Errorf("the log of one of the oldest VMs, %s, was not pruned", name)
			}
		}
	}
}

func TestKeptLogsBeyondBoundsBySize(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var names []string
	for i := 0; i < 4; i++ {
		name := vm.KeptConsoleLogName(vm.NewCID(), start.Add(time.Duration(i)*time.Second))
		names = append(names, name)
		os.WriteFile(filepath.Join(dir, name), make([]byte, 400), 0o600)
	}
	// Newest first: 400, 800, 1200 bytes... a 1000-byte cap keeps two.
	got := keptLogsBeyondBounds(dir, 10, 1000)
	want := []string{filepath.Join(dir, names[1]), filepath.Join(dir, names[0])}
	if !slices.Equal(got, want) {
		t.Fatalf("beyond a 1000-byte cap: %v; want %v", got, want)
	}
	// The newest log stays even when it alone passes the cap.
	if got := keptLogsBeyondBounds(dir, 10, 100); len(got) != 3 || slices.Contains(got, filepath.Join(dir, names[3])) {
		t.Fatalf("beyond a 100-byte cap: %v; want all but the newest", got)
	}
}
