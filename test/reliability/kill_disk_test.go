package reliability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
)

// diskKillDelays are how long attach_disk and snapshot_disk run before
// SIGKILL: before the config is read, while libvirt is reached and the
// locks taken, while the device is plugged or the backup job runs, and
// about when the call finishes (on a 2-core host each answers in some
// 100-300 ms, process start included).
var diskKillDelays = []time.Duration{5 * time.Millisecond, 30 * time.Millisecond, 80 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond}

// killAfter starts one CPI process with request, sends SIGKILL after
// delay and tells whether it answered first, with what it printed.
func killAfter(t *testing.T, request []byte, delay time.Duration) (finished bool, stdout []byte) {
	t.Helper()
	cmd := exec.Command(env.Client.Binary, "-configPath", env.Client.ConfigPath)
	cmd.Stdin = bytes.NewReader(request)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	_ = cmd.Process.Kill()
	err := cmd.Wait()
	var exit *exec.ExitError
	signaled := errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled()
	return !signaled, out.Bytes()
}

// answeredResult decodes an answer printed before a kill: it must be a
// result, not an error (every call here is valid).
func answeredResult(t *testing.T, method string, stdout []byte) json.RawMessage {
	t.Helper()
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  any             `json:"error"`
	}
	if json.Unmarshal(stdout, &resp) != nil || resp.Error != nil {
		t.Fatalf("%s answered before the kill, but not with a result: %q", method, stdout)
	}
	return resp.Result
}

// unexpected are the leaks whose names carry none of cids: while the test
// runs, the VM's and its disks' objects are rightly there.
func unexpected(l leaks, cids ...string) []string {
	var out []string
	for _, name := range l.all() {
		if !slices.ContainsFunc(cids, func(c string) bool { return strings.Contains(name, c) }) {
			out = append(out, name)
		}
	}
	return out
}

// TestKillDuringDiskCalls kills attach_disk, then snapshot_disk, with
// SIGKILL at several delays, on a running VM (a blank guest, sitting in
// the BIOS; hot-plug and QEMU's backup job need no guest). What it holds:
//   - a killed attach_disk leaves nothing but the VM's and the disk's own
//     objects; attach_disk again succeeds at once (a dead call's locks do
//     not wedge it) and leaves the disk in get_disks and in the agent
//     settings the VM reads, whichever step the kill interrupted;
//   - a killed snapshot_disk leaves at most the snapshot volume it was
//     making, its metadata volume and its creation record; when it was
//     killed before answering, they are named by a snapshot CID the
//     director never got, and the sweep (`cpi doctor -sweep`, safe age
//     lowered) removes them: counted in FIGURE lines, leaks after the
//     sweep = 0; the next snapshot_disk and its
//     delete_snapshot work (a backup job the dead call started does not
//     block the next one for good);
//   - afterwards delete_vm and delete_disk leave nothing: leaks = 0.
func TestKillDuringDiskCalls(t *testing.T) {
	defer func(c cpiclient.Client) { env.Client = c }(env.Client)
	stemcellCID := importStemcell(t)
	if before := countLeaks(t, stemcellCID); before.count() != 0 {
		t.Fatalf("the environment is not clean before the kills: %v", before.all())
	}
	// Stemcell API version 1: attach_disk then also rewrites the config
	// drive and the saved settings the agent reads, a second step a kill
	// can fall between.
	env.Client.StemcellAPIVersion = 1
	vmCID, run, err := env.Client.CreateVM("agent-kill-disk", stemcellCID, vmProps, networks(), map[string]any{}, nil)
	if err != nil {
		t.Fatalf("create_vm: %v\n%s", err, run.Stderr)
	}
	var disks []string
	defer func() {
		env.Client.Call("delete_vm", vmCID)
		for _, d := range disks {
			env.Client.Call("delete_disk", d)
		}
	}()
	newDisk := func() string {
		cid, run, err := env.Client.CallString("create_disk", 16, map[string]any{}, vmCID)
		if err != nil {
			t.Fatalf("create_disk: %v\n%s", err, run.Stderr)
		}
		disks = append(disks, cid)
		return cid
	}

	// attach_disk: a fresh disk each time, all on the one running VM.
	var attachFigures []string
	for _, delay := range diskKillDelays {
		diskCID := newDisk()
		finished, stdout := killAfter(t, env.Client.Request("attach_disk", vmCID, diskCID), delay)
		outcome := "killed"
		if finished {
			answeredResult(t, "attach_disk", stdout)
			outcome = "answered before the kill"
		}
		attachedBefore := slices.Contains(getDisks(t, vmCID), diskCID)
		stray := unexpected(countLeaks(t, stemcellCID), append([]string{vmCID}, disks...)...)
		for _, s := range stray {
			t.Errorf("attach_disk killed at %s left %s, which is neither the VM's nor a disk's", delay, s)
		}
		start := time.Now()
		if _, run, err := env.Client.Call("attach_disk", vmCID, diskCID); err != nil {
			t.Errorf("attach_disk again after a kill at %s: %v\n%s", delay, err, run.Stderr)
		}
		again := time.Since(start)
		if again > 30*time.Second {
			t.Errorf("attach_disk again after a kill at %s took %s", delay, again)
		}
		if !slices.Contains(getDisks(t, vmCID), diskCID) {
			t.Errorf("after a kill at %s and attach_disk again, get_disks %s lacks %s", delay, vmCID, diskCID)
		}
		inSettings := settingsNameDisk(t, vmCID, diskCID)
		if !inSettings {
			t.Errorf("after a kill at %s and attach_disk again, the agent settings of %s do not name %s", delay, vmCID, diskCID)
		}
		attachFigures = append(attachFigures, fmtFigure("kill attach_disk at %s: %s; attached before the retry: %v; stray objects: %d; attach again: %s, in get_disks and settings: %v",
			delay, outcome, attachedBefore, len(stray), again.Round(time.Millisecond), inSettings))
	}

	// snapshot_disk: the first disk, attached to the running VM.
	diskCID := disks[0]
	var snapFigures []string
	sweptSnaps, leakedSnaps := 0, 0
	for _, delay := range diskKillDelays {
		finished, stdout := killAfter(t, env.Client.Request("snapshot_disk", diskCID, map[string]any{"director_name": "rel"}), delay)
		outcome, snapCID := "killed", ""
		if finished {
			_ = json.Unmarshal(answeredResult(t, "snapshot_disk", stdout), &snapCID)
			outcome = "answered before the kill"
		}
		left := unexpected(countLeaks(t, stemcellCID), append([]string{vmCID}, disks...)...)
		cids := map[string]bool{}
		for _, name := range left {
			_, obj, _ := strings.Cut(name, " ")
			cid, _, _ := strings.Cut(obj, ".") // <cid>.meta, <cid>.creating-<t>
			if !strings.HasPrefix(name, "volume snap-") || !snapCIDShape(cid) {
				t.Errorf("snapshot_disk killed at %s left %s, which is not a snapshot's volume", delay, name)
				continue
			}
			cids[cid] = true
		}
		if snapCID != "" {
			cids[snapCID] = true
		}
		if len(cids) > 1 {
			t.Errorf("snapshot_disk killed at %s left objects of %d snapshots, want at most one: %v", delay, len(cids), left)
		}
		if snapCID != "" {
			if _, run, err := env.Client.Call("delete_snapshot", snapCID); err != nil {
				t.Errorf("delete_snapshot %s after a kill at %s: %v\n%s", snapCID, delay, err, run.Stderr)
			}
		}
		swept := sweepOrphans(t)
		sweptSnaps += len(swept)
		rest := unexpected(countLeaks(t, stemcellCID), append([]string{vmCID}, disks...)...)
		leakedSnaps += len(rest)
		for _, r := range rest {
			t.Errorf("snapshot_disk killed at %s: %s is left after delete_snapshot and the sweep", delay, r)
		}
		start := time.Now()
		next, run, err := env.Client.CallString("snapshot_disk", diskCID, map[string]any{})
		if err != nil {
			t.Errorf("snapshot_disk after a kill at %s: %v\n%s", delay, err, run.Stderr)
		} else if _, run, err := env.Client.Call("delete_snapshot", next); err != nil {
			t.Errorf("delete_snapshot of the next snapshot after a kill at %s: %v\n%s", delay, err, run.Stderr)
		}
		snapFigures = append(snapFigures, fmtFigure("kill snapshot_disk (disk attached, VM running) at %s: %s; left %v; removed by the sweep: %d %v; leaks after the sweep: %d; next snapshot_disk+delete_snapshot: %s",
			delay, outcome, orDash(strings.Join(left, ", ")), len(swept), swept, len(rest), time.Since(start).Round(time.Millisecond)))
	}

	if _, run, err := env.Client.Call("delete_vm", vmCID); err != nil {
		t.Errorf("delete_vm %s: %v\n%s", vmCID, err, run.Stderr)
	}
	for _, d := range disks {
		if _, run, err := env.Client.Call("delete_disk", d); err != nil {
			t.Errorf("delete_disk %s: %v\n%s", d, err, run.Stderr)
		}
	}
	disks = nil
	for _, f := range append(attachFigures, snapFigures...) {
		t.Log(f)
	}
	left := countLeaks(t, stemcellCID)
	t.Logf("FIGURE kill disk calls: %d attach_disk and %d snapshot_disk kills; orphaned snapshots removed by the sweep: %d; leaks after the sweep: %d; leaks after delete_vm and delete_disk: %d (%s)",
		len(diskKillDelays), len(diskKillDelays), sweptSnaps, leakedSnaps, left.count(), left)
	for _, l := range left.all() {
		t.Errorf("left behind: %s", l)
	}
}

func fmtFigure(format string, args ...any) string {
	return "FIGURE " + fmt.Sprintf(format, args...)
}

var snapCIDIn = regexp.MustCompile(`^snap-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func snapCIDShape(cid string) bool { return snapCIDIn.MatchString(cid) }

// getDisks is get_disks of vmCID.
func getDisks(t *testing.T, vmCID string) []string {
	t.Helper()
	raw, run, err := env.Client.Call("get_disks", vmCID)
	if err != nil {
		t.Fatalf("get_disks %s: %v\n%s", vmCID, err, run.Stderr)
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		t.Fatalf("get_disks answered %s", raw)
	}
	return ids
}

// settingsNameDisk tells whether the agent settings the CPI keeps for
// vmCID list diskCID among the persistent disks.
func settingsNameDisk(t *testing.T, vmCID, diskCID string) bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.StoreDir, "vms", vmCID+".json"))
	if err != nil {
		t.Errorf("reading the settings of %s: %v", vmCID, err)
		return false
	}
	var s struct {
		Disks struct {
			Persistent map[string]json.RawMessage `json:"persistent"`
		} `json:"disks"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Errorf("settings of %s: %v", vmCID, err)
		return false
	}
	_, ok := s.Disks.Persistent[diskCID]
	return ok
}
