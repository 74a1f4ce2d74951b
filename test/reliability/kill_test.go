package reliability

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killDelays are how long a create call runs before SIGKILL: before the
// config is read, while libvirt is reached, while volumes are made, and
// about when the call finishes (create_disk takes some 30 ms, create_vm
// several hundred).
var killDelays = map[string][]time.Duration{
	"create_vm":   {5 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 800 * time.Millisecond},
	"create_disk": {5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 50 * time.Millisecond},
}

var (
	vmCIDIn   = regexp.MustCompile(`^(vm-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(-root|-ephemeral|-config\.iso|\.log|\.json|\.lock|\.creating-[0-9]+)?$`)
	diskCIDIn = regexp.MustCompile(`^(virtio-[a-z2-7]{13})(\.lock|\.meta|\.creating-[0-9]+)?$`)
)

// killed is one create call killed part-way.
type killed struct {
	method   string
	delay    time.Duration
	finished bool // it answered before the kill
	cid      string
	left     leaks // what it left, before any cleanup
	// swept are what the sweep removed; leaks what even it left (the
	// test removes them with virsh, and fails); staleLocks the lock files
	// of the dead process that stayed.
	swept, leaks, staleLocks []string
}

// TestKillDuringCreate kills create_vm and create_disk processes with
// SIGKILL at several delays. What it holds:
//   - a kill leaves only objects of the one CID the call was making, named
//     as the CPI names them (nothing foreign, nothing of another CID);
//   - the next call of the same kind succeeds at once (a lock held by the
//     dead process does not wedge it);
//   - a call that answered before the kill is undone by the director's
//     call (delete_vm, delete_disk) on its CID, to the last object;
//   - what a killed call left, whose CID the director never got, is
//     removed by the sweep (`cpi doctor -sweep`, with the safe age lowered:
//     the suite runs one call at a time here): leaks after the sweep = 0.
func TestKillDuringCreate(t *testing.T) {
	stemcellCID := importStemcell(t)
	if before := countLeaks(t, stemcellCID); before.count() != 0 {
		t.Fatalf("the environment is not clean before the kills: %v", before.all())
	}
	var results []killed
	for _, method := range []string{"create_vm", "create_disk"} {
		for _, delay := range killDelays[method] {
			k := killOne(t, method, delay, stemcellCID)
			cleanUpAfterKill(t, &k, stemcellCID)
			results = append(results, k)
			afterKillWorks(t, method, stemcellCID)
		}
	}
	swept, leaked, lockFiles, withDomain := 0, 0, 0, 0
	for _, k := range results {
		outcome := "killed"
		if k.finished {
			outcome = "answered before the kill"
		}
		t.Logf("FIGURE kill %s at %s: %s, cid %s, left %s; removed by the sweep: %d %v; leaks after the sweep: %d %v; stale lock files: %d",
			k.method, k.delay, outcome, orDash(k.cid), k.left, len(k.swept), k.swept, len(k.leaks), k.leaks, len(k.staleLocks))
		if len(k.left.domains) > 0 {
			withDomain++
		}
		swept += len(k.swept)
		leaked += len(k.leaks)
		lockFiles += len(k.staleLocks)
	}
	t.Logf("FIGURE kill: %d kills, %d left a domain; orphans removed by the sweep: %d; leaks after the sweep: %d; stale lock files: %d",
		len(results), withDomain, swept, leaked, lockFiles)
	if left := countLeaks(t, stemcellCID); left.count() != 0 {
		t.Errorf("after the kills and their cleanup, left: %v", left.all())
	}
}

// sweepOrphans runs `cpi doctor -sweep` with the safe age lowered to a
// millisecond (no create is in flight between the suite's kills, and the
// sweep's per-CID locks would skip one anyway) and returns what it says
// it swept.
func sweepOrphans(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command(env.Client.Binary, "doctor", "-sweep", "-orphanAge", "1ms", "-configPath", env.Client.ConfigPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // other checks may fail on this host; the orphans' lines tell
	var swept []string
	for _, line := range strings.Split(stdout.String(), "\n") {
		if strings.Contains(line, "] orphans: ") && strings.HasPrefix(line, "[FAIL") {
			t.Errorf("cpi doctor -sweep: %s\n%s", line, stderr.String())
		}
		if _, what, ok := strings.Cut(line, "] orphans: swept "); ok {
			swept = append(swept, what)
		}
	}
	return swept
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// killOne starts method, kills it after delay and lists what it left.
func killOne(t *testing.T, method string, delay time.Duration, stemcellCID string) killed {
	t.Helper()
	client := env.Client
	var request []byte
	switch method {
	case "create_vm":
		request = client.Request(method, "agent-kill", stemcellCID, vmProps, networks(), []string{}, map[string]any{})
	case "create_disk":
		request = client.Request(method, 16, map[string]any{}, nil)
	}
	cmd := exec.Command(client.Binary, "-configPath", client.ConfigPath)
	cmd.Stdin = bytes.NewReader(request)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(delay)
	_ = cmd.Process.Kill()
	err := cmd.Wait()
	k := killed{method: method, delay: delay}
	// The director knows what the call answered: a call killed after its
	// answer was out (before it exited) answered all the same.
	var exit *exec.ExitError
	signaled := errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled()
	k.finished = !signaled || stdout.Len() > 0
	if k.finished {
		var resp struct {
			Result json.RawMessage `json:"result"`
			Error  any             `json:"error"`
		}
		if json.Unmarshal(stdout.Bytes(), &resp) != nil || resp.Error != nil {
			t.Fatalf("%s answered before the kill, but not with a result: %q", method, stdout.String())
		}
		var vm []string
		if json.Unmarshal(resp.Result, &vm) == nil && len(vm) > 0 {
			k.cid = vm[0]
		} else {
			_ = json.Unmarshal(resp.Result, &k.cid)
		}
	}
	k.left = countLeaks(t, stemcellCID)
	if k.finished && k.left.count() == 0 {
		t.Fatalf("%s answered %s but nothing of it is there", method, k.cid)
	}
	return k
}

// cleanUpAfterKill checks that everything left belongs to one CID of the
// killed method, then removes it: through the CPI where a call can (a
// domain: delete_vm; a disk: delete_disk), else with virsh, counting it.
func cleanUpAfterKill(t *testing.T, k *killed, stemcellCID string) {
	t.Helper()
	pattern := vmCIDIn
	if k.method == "create_disk" {
		pattern = diskCIDIn
	}
	cids := map[string]bool{}
	if k.cid != "" {
		cids[k.cid] = true
	}
	for _, name := range slices.Concat(k.left.domains, k.left.volumes, basenames(k.left.files), k.left.locks) {
		m := pattern.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("%s killed at %s left %q, which is not named as %s names its objects", k.method, k.delay, name, k.method)
			continue
		}
		cids[m[1]] = true
	}
	if len(k.left.networks) > 0 {
		t.Errorf("%s killed at %s left networks %v", k.method, k.delay, k.left.networks)
	}
	if len(cids) > 1 {
		t.Errorf("%s killed at %s left objects of %d CIDs, want one: %v", k.method, k.delay, len(cids), k.left.all())
	}
	for cid := range cids {
		if k.cid == "" {
			k.cid = cid
		}
	}
	if k.cid == "" {
		return
	}
	// The director knows the CID of a call that answered, and removes it.
	if k.finished {
		method := map[string]string{"create_vm": "delete_vm", "create_disk": "delete_disk"}[k.method]
		if _, run, err := env.Client.Call(method, k.cid); err != nil {
			t.Errorf("%s %s after a kill at %s: %v\n%s", method, k.cid, k.delay, err, run.Stderr)
		}
		if rest := ofCID(countLeaks(t, stemcellCID), k.cid); !onlyLocks(rest) {
			t.Errorf("%s %s after a kill at %s left %v", method, k.cid, k.delay, rest)
		}
	}
	// What a killed call left, the sweep must find and remove.
	k.swept = sweepOrphans(t)
	rest := countLeaks(t, stemcellCID)
	for _, v := range rest.volumes {
		k.leaks = append(k.leaks, "volume "+v)
		t.Errorf("%s killed at %s: volume %s is left after the sweep", k.method, k.delay, v)
		if out, err := env.Virsh("vol-delete", "--pool", env.Pool, v); err != nil {
			t.Errorf("removing leaked volume %s: %s", v, out)
		}
	}
	for _, f := range rest.files {
		k.leaks = append(k.leaks, "file "+f)
		t.Errorf("%s killed at %s: file %s is left after the sweep", k.method, k.delay, f)
		os.Remove(filepath.Join(env.StoreDir, f))
	}
	for _, l := range rest.locks {
		k.staleLocks = append(k.staleLocks, l)
		os.Remove(filepath.Join(env.StoreDir, "locks", l))
	}
	for _, d := range rest.domains {
		t.Errorf("domain %s is still there after the sweep", d)
	}
}

// afterKillWorks runs the killed method again, to the end, and undoes it:
// a dead call must not hold up the next one.
func afterKillWorks(t *testing.T, method, stemcellCID string) {
	t.Helper()
	start := time.Now()
	switch method {
	case "create_vm":
		cid, run, err := env.Client.CreateVM("agent-after-kill", stemcellCID, vmProps, networks(), map[string]any{}, nil)
		if err != nil {
			t.Fatalf("create_vm after a kill: %v\n%s", err, run.Stderr)
		}
		if _, run, err := env.Client.Call("delete_vm", cid); err != nil {
			t.Fatalf("delete_vm after a kill: %v\n%s", err, run.Stderr)
		}
		if rest := ofCID(countLeaks(t, stemcellCID), cid); len(rest) > 0 {
			t.Errorf("create_vm and delete_vm after a kill left %v", rest)
		}
	case "create_disk":
		cid, run, err := env.Client.CallString("create_disk", 16, map[string]any{}, nil)
		if err != nil {
			t.Fatalf("create_disk after a kill: %v\n%s", err, run.Stderr)
		}
		if _, run, err := env.Client.Call("delete_disk", cid); err != nil {
			t.Fatalf("delete_disk after a kill: %v\n%s", err, run.Stderr)
		}
		if rest := ofCID(countLeaks(t, stemcellCID), cid); len(rest) > 0 {
			t.Errorf("create_disk and delete_disk after a kill left %v", rest)
		}
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("%s after a kill took %s", method, took)
	}
}

func basenames(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f[strings.LastIndex(f, "/")+1:]
	}
	return out
}

// ofCID are the leaks whose names carry cid.
func ofCID(l leaks, cid string) []string {
	var out []string
	for _, name := range l.all() {
		if strings.Contains(name, cid) {
			out = append(out, name)
		}
	}
	return out
}

func onlyLocks(names []string) bool {
	for _, n := range names {
		if !strings.HasPrefix(n, "lock file ") {
			return false
		}
	}
	return true
}
