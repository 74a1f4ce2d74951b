package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
)

// Workers and rounds of the load; RELIABILITY_WORKERS and
// RELIABILITY_ROUNDS make a longer run.
func loadSize() (workers, rounds int) {
	workers, rounds = 4, 8
	if n, err := strconv.Atoi(os.Getenv("RELIABILITY_WORKERS")); err == nil && n > 0 {
		workers = n
	}
	if n, err := strconv.Atoi(os.Getenv("RELIABILITY_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	return workers, rounds
}

// TestParallelLoad: N workers, each a stream of CPI processes as the
// director starts them, make disks and VMs at the same time: every call
// answers success, every answer agrees with what was done (has_disk and
// has_vm before and after deletes), and afterwards nothing is left: no
// domain, volume, network, console log, settings file or lock file.
func TestParallelLoad(t *testing.T) {
	stemcellCID := importStemcell(t)
	workers, rounds := loadSize()
	ty := newTally()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				diskRound(ty, w, r)
				if r%4 == 3 {
					vmRound(ty, stemcellCID, w)
				}
			}
		}(w)
	}
	wg.Wait()
	took := time.Since(start)
	calls, errs := ty.total()
	t.Logf("FIGURE load: %d workers x (%d disk rounds + %d VM rounds): %d calls in %s (%.1f calls/s)",
		workers, rounds, rounds/4, calls, took.Round(time.Second), float64(calls)/took.Seconds())
	t.Logf("FIGURE load calls: %s", sortedCounts(ty.calls))
	t.Logf("FIGURE load errors: %d (%s)", errs, sortedCounts(ty.errors))
	for _, f := range ty.failed {
		t.Errorf("call failed: %s", f)
	}
	left := countLeaks(t, stemcellCID)
	t.Logf("FIGURE load leaks: %d (%s)", left.count(), left)
	for _, l := range left.all() {
		t.Errorf("left behind: %s", l)
	}
}

// diskRound is a disk's whole life without a VM.
func diskRound(ty *tally, w, r int) {
	client := env.Client
	cid, ok := ty.callString(client, "create_disk", 16, map[string]any{}, nil)
	if !ok {
		return
	}
	expect(ty, client, "has_disk", true, cid)
	ty.call(client, "set_disk_metadata", cid, map[string]any{"director": "rel", "deployment": fmt.Sprintf("w%d", w), "index": strconv.Itoa(r)})
	ty.call(client, "resize_disk", cid, 32)
	if snap, ok := ty.callString(client, "snapshot_disk", cid, map[string]any{"director_name": "rel"}); ok {
		ty.call(client, "delete_snapshot", snap)
	}
	ty.call(client, "delete_disk", cid)
	expect(ty, client, "has_disk", false, cid)
}

// vmRound is a VM with a persistent disk attached, snapshotted while
// attached, and deleted with it attached (a blank guest never acknowledges
// a detach), then the disk.
func vmRound(ty *tally, stemcellCID string, w int) {
	client := env.Client
	raw, ok := ty.call(client, "create_vm", fmt.Sprintf("agent-rel-%d", w), stemcellCID, vmProps, networks(), []string{}, map[string]any{"bosh": map[string]any{"group": "rel"}})
	if !ok {
		return
	}
	var result []json.RawMessage
	var vmCID string
	if json.Unmarshal(raw, &result) != nil || len(result) != 2 || json.Unmarshal(result[0], &vmCID) != nil {
		ty.mu.Lock()
		ty.failed = append(ty.failed, fmt.Sprintf("create_vm answered %s", raw))
		ty.mu.Unlock()
		return
	}
	expect(ty, client, "has_vm", true, vmCID)
	ty.call(client, "set_vm_metadata", vmCID, map[string]any{"director": "rel", "job": "w", "index": strconv.Itoa(w)})
	diskCID, ok := ty.callString(client, "create_disk", 16, map[string]any{}, vmCID)
	if ok {
		if _, ok := ty.call(client, "attach_disk", vmCID, diskCID); ok {
			if snap, ok := ty.callString(client, "snapshot_disk", diskCID, map[string]any{}); ok {
				ty.call(client, "delete_snapshot", snap)
			}
		}
	}
	ty.call(client, "delete_vm", vmCID)
	expect(ty, client, "has_vm", false, vmCID)
	if ok {
		expect(ty, client, "has_disk", true, diskCID)
		ty.call(client, "delete_disk", diskCID)
		expect(ty, client, "has_disk", false, diskCID)
	}
}

// expect runs a has_* method and records a wrong answer as a failure.
func expect(ty *tally, client cpiclient.Client, method string, want bool, cid string) {
	raw, ok := ty.call(client, method, cid)
	if !ok {
		return
	}
	var got bool
	if json.Unmarshal(raw, &got) != nil || got != want {
		ty.mu.Lock()
		ty.failed = append(ty.failed, fmt.Sprintf("%s %s = %s; want %v", method, cid, raw, want))
		ty.mu.Unlock()
	}
}
