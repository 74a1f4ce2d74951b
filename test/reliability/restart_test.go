package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// restartInsideEnv tells the test binary it runs inside the namespaces of
// test/createenv/in-namespace.sh, next to a libvirtd of its own.
const restartInsideEnv = "BOSH_LIBVIRT_CPI_RELIABILITY_INSIDE"

// privatePIDFile is where in-namespace.sh has the private libvirtd write
// its pid (a directory bind-mounted over /run/libvirt in the namespace).
const privatePIDFile = "/run/libvirt/libvirtd.pid"

// downFor is how long libvirtd stays down in each round.
const downFor = 3 * time.Second

// failFast bounds a call made while libvirtd is down: the CPI's dial
// timeout is 10 s.
const failFast = 15 * time.Second

// TestLibvirtdRestart kills the libvirtd the CPI talks to while a load
// runs (3 workers making disk calls, one making and deleting VMs), once
// with SIGKILL and once with SIGTERM, and starts it again as
// in-namespace.sh does. The daemon is a private one, in network and mount
// namespaces of its own, so the machine's libvirtd is not disturbed. What
// it holds:
//   - every call started while libvirtd is down answers JSON with an
//     error, within failFast (it does not hang until a timeout of minutes);
//     the error types and ok_to_retry flags seen are printed;
//   - every call started once libvirtd answers again succeeds;
//   - after the load, and delete_vm/delete_disk/delete_snapshot of every
//     CID the director got and did not see deleted, nothing is left:
//     domains, volumes, networks, files, lock files, also of the calls
//     the outage cut (their undo reconnects first); any leftover fails
//     the test, is counted in FIGURE lines and removed with virsh.
func TestLibvirtdRestart(t *testing.T) {
	if os.Getenv(restartInsideEnv) == "" {
		runInNamespace(t)
		return
	}
	restartInside(t)
}

// runInNamespace re-runs this test inside unshare --net --mount through
// in-namespace.sh, which starts the private virtlogd and libvirtd.
func runInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes namespaces and bind mounts for a private libvirtd")
	}
	for _, tool := range []string{"unshare", "libvirtd", "virtlogd", "ip", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s: scripts/host.sh install", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	if err := os.Chmod(scratch, 0o711); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private",
		filepath.Join(root, "test/createenv/in-namespace.sh"), scratch, "10.253.0.1",
		os.Args[0], "-test.run", "^TestLibvirtdRestart$", "-test.v", "-test.timeout", "5m")
	cmd.Env = append(os.Environ(), restartInsideEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the restart test inside the namespaces failed after %s: %v", time.Since(start).Round(time.Second), err)
	}
	t.Logf("FIGURE restart: whole run inside the namespaces (private daemons, build, load) %s", time.Since(start).Round(time.Second))
}

// restartCall is one call of the load.
type restartCall struct {
	method       string
	start, end   time.Time
	errType      string // "" on success
	okToRetry    bool
	message      string
	noJSON, exit bool
}

// outage is one round of libvirtd down: the signal, when its process was
// gone, when the restart command ran and when the daemon answered.
type outage struct {
	signal           syscall.Signal
	killed, gone     time.Time
	restarted, ready time.Time
}

type restartLoad struct {
	mu    sync.Mutex
	calls []restartCall
	// owed are CIDs the director got and has not seen deleted.
	owed map[string]string // cid -> kind
	// failedOn are the CIDs named in failed calls' messages, with the
	// method: what a call cut by an outage left is named by its CID.
	failedOn map[string]string
	// failedMsg is the error that call answered.
	failedMsg map[string]string
	stop      chan struct{}
}

var cidInText = regexp.MustCompile(`(?:vm|snap)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|virtio-[a-z2-7]{13}`)

func (rl *restartLoad) call(method string, args ...any) (json.RawMessage, bool) {
	c := restartCall{method: method, start: time.Now()}
	run, err := env.Client.RunRaw(env.Client.Request(method, args...))
	c.end = time.Now()
	ok := false
	switch {
	case err != nil:
		c.noJSON, c.message = true, err.Error()
	case run.ExitCode != 0:
		c.exit, c.message = true, fmt.Sprintf("exit %d", run.ExitCode)
	case run.Response.Error != nil:
		c.errType, c.okToRetry, c.message = run.Response.Error.Type, run.Response.Error.OkToRetry, run.Response.Error.Message
	default:
		ok = true
	}
	rl.mu.Lock()
	rl.calls = append(rl.calls, c)
	if !ok {
		for _, cid := range cidInText.FindAllString(c.message, -1) {
			if _, seen := rl.failedOn[cid]; !seen || method == "create_vm" || method == "snapshot_disk" {
				rl.failedOn[cid] = method
				rl.failedMsg[cid] = c.errType + ": " + c.message
			}
		}
	}
	rl.mu.Unlock()
	if !ok {
		// A director backs off too; a tight loop would only burn CPU.
		time.Sleep(200 * time.Millisecond)
		return nil, false
	}
	return run.Response.Result, true
}

func (rl *restartLoad) owe(cid, kind string) {
	rl.mu.Lock()
	rl.owed[cid] = kind
	rl.mu.Unlock()
}

func (rl *restartLoad) paid(cid string) {
	rl.mu.Lock()
	delete(rl.owed, cid)
	rl.mu.Unlock()
}

func (rl *restartLoad) stopped() bool {
	select {
	case <-rl.stop:
		return true
	default:
		return false
	}
}

// diskWorker makes, snapshots and deletes disks until stopped. A CID whose
// delete failed stays owed, as the director would retry it later.
func (rl *restartLoad) diskWorker(w int) {
	for r := 0; !rl.stopped(); r++ {
		raw, ok := rl.call("create_disk", 16, map[string]any{}, nil)
		var cid string
		if !ok || json.Unmarshal(raw, &cid) != nil {
			continue
		}
		rl.owe(cid, "disk")
		rl.call("has_disk", cid)
		rl.call("set_disk_metadata", cid, map[string]any{"director": "rel", "index": strconv.Itoa(r)})
		if raw, ok := rl.call("snapshot_disk", cid, map[string]any{}); ok {
			var snap string
			if json.Unmarshal(raw, &snap) == nil {
				rl.owe(snap, "snapshot")
				if _, ok := rl.call("delete_snapshot", snap); ok {
					rl.paid(snap)
				}
			}
		}
		if _, ok := rl.call("delete_disk", cid); ok {
			rl.paid(cid)
		}
	}
}

// probeWhileDown makes calls of its own while libvirtd is down: the load's
// workers may all be inside calls that wait for libvirtd to come back
// (an undo reconnects first), and a call started during the outage must
// still be seen to fail fast.
func (rl *restartLoad) probeWhileDown() {
	rl.call("create_disk", 16, map[string]any{}, nil)
	rl.call("has_disk", "virtio-aaaaaaaaaaaaa")
	rl.call("create_vm", "agent-probe", "stemcell-none", map[string]any{}, networks(), []string{}, map[string]any{})
}

// vmWorker makes and deletes VMs until stopped.
func (rl *restartLoad) vmWorker(stemcellCID string) {
	for !rl.stopped() {
		raw, ok := rl.call("create_vm", "agent-restart", stemcellCID, vmProps, networks(), []string{}, map[string]any{})
		var result []json.RawMessage
		var cid string
		if !ok || json.Unmarshal(raw, &result) != nil || len(result) != 2 || json.Unmarshal(result[0], &cid) != nil {
			continue
		}
		rl.owe(cid, "vm")
		rl.call("has_vm", cid)
		if _, ok := rl.call("delete_vm", cid); ok {
			rl.paid(cid)
		}
	}
}

func restartInside(t *testing.T) {
	stemcellCID := importStemcell(t)
	if before := countLeaks(t, stemcellCID); before.count() != 0 {
		t.Fatalf("the environment is not clean before the load: %v", before.all())
	}
	rl := &restartLoad{owed: map[string]string{}, failedOn: map[string]string{}, failedMsg: map[string]string{}, stop: make(chan struct{})}
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) { defer wg.Done(); rl.diskWorker(w) }(w)
	}
	wg.Add(1)
	go func() { defer wg.Done(); rl.vmWorker(stemcellCID) }()

	var outages []outage
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		time.Sleep(3 * time.Second)
		o, err := bounceLibvirtd(sig, rl.probeWhileDown)
		if err != nil {
			close(rl.stop)
			wg.Wait()
			t.Fatal(err)
		}
		outages = append(outages, o)
	}
	time.Sleep(3 * time.Second)
	close(rl.stop)
	wg.Wait()

	// Judge each call by when it ran.
	for i, o := range outages {
		var down, after []restartCall
		inFlight := 0
		var next time.Time
		if i+1 < len(outages) {
			next = outages[i+1].killed
		}
		for _, c := range rl.calls {
			switch {
			case !c.start.Before(o.gone) && c.start.Before(o.restarted):
				down = append(down, c)
			case c.start.Before(o.killed) && c.end.After(o.killed):
				inFlight++
			case !c.start.Before(o.ready) && (next.IsZero() || c.end.Before(next)):
				after = append(after, c)
			}
		}
		kinds := map[string]int{}
		var slowest time.Duration
		for _, c := range down {
			took := c.end.Sub(c.start)
			slowest = max(slowest, took)
			switch {
			case c.noJSON || c.exit:
				t.Errorf("%s while libvirtd was down (%s) answered no JSON error: %s", c.method, o.signal, c.message)
			case c.errType == "":
				t.Errorf("%s while libvirtd was down (%s) succeeded", c.method, o.signal)
			}
			if took > failFast {
				t.Errorf("%s while libvirtd was down (%s) took %s to fail", c.method, o.signal, took.Round(time.Millisecond))
			}
			kinds[fmt.Sprintf("%s:%s/ok_to_retry=%v", c.method, c.errType, c.okToRetry)]++
		}
		if len(down) == 0 {
			t.Errorf("no call was made while libvirtd was down (%s)", o.signal)
		}
		failedAfter := 0
		for _, c := range after {
			if c.errType != "" || c.noJSON || c.exit {
				failedAfter++
				t.Errorf("%s after libvirtd was back (%s) failed: %s: %s", c.method, o.signal, c.errType, c.message)
			}
		}
		t.Logf("FIGURE restart %s: libvirtd gone %s after the signal, down %s, answering %s after the restart command",
			o.signal, o.gone.Sub(o.killed).Round(time.Millisecond), o.restarted.Sub(o.gone).Round(time.Millisecond), o.ready.Sub(o.restarted).Round(time.Millisecond))
		t.Logf("FIGURE restart %s: %d calls made while down, all failed within %s (slowest); answers: %s",
			o.signal, len(down), slowest.Round(time.Millisecond), sortedCounts(kinds))
		t.Logf("FIGURE restart %s: %d calls in flight at the signal; %d calls after it was back, %d failed",
			o.signal, inFlight, len(after), failedAfter)
		if i == 0 && len(down) > 0 {
			t.Logf("FIGURE restart %s: a message seen while down: %s: %s", o.signal, down[0].errType, down[0].message)
		}
	}
	for _, c := range rl.calls {
		if c.errType != "" {
			inOutage := slices.ContainsFunc(outages, func(o outage) bool { return c.end.After(o.killed) && c.start.Before(o.ready) })
			if !inOutage {
				t.Errorf("%s failed away from any outage: %s: %s", c.method, c.errType, c.message)
			}
		}
	}
	failedBy := map[string]int{}
	for _, c := range rl.calls {
		if c.errType != "" || c.noJSON || c.exit {
			failedBy[c.method]++
		}
	}
	t.Logf("FIGURE restart load: %d calls; failed: %s", len(rl.calls), sortedCounts(failedBy))

	// What the director got and did not see deleted, it deletes now.
	owed := make([]string, 0, len(rl.owed))
	for cid := range rl.owed {
		owed = append(owed, cid)
	}
	sort.Strings(owed)
	for _, cid := range owed {
		method := map[string]string{"vm": "delete_vm", "disk": "delete_disk", "snapshot": "delete_snapshot"}[rl.owed[cid]]
		if _, run, err := env.Client.Call(method, cid); err != nil {
			t.Errorf("%s %s after the outages: %v\n%s", method, cid, err, run.Stderr)
		}
	}
	t.Logf("FIGURE restart: %d CIDs the director got and had not seen deleted, deleted after the run: %v", len(owed), owed)

	// Leftovers: whatever a call the outage cut left is a failure (the
	// director got no CID, so it never deletes it: the undo must, after
	// reconnecting), and so is anything else.
	left := countLeaks(t, stemcellCID)
	var cut, other []string
	for _, name := range left.all() {
		cid := cidInText.FindString(name)
		if method := rl.failedOn[cid]; method != "" {
			cut = append(cut, method+": "+name)
			t.Errorf("left behind by a %s the outage cut: %s; the call answered %s", method, name, rl.failedMsg[cid])
			continue
		}
		other = append(other, name)
		t.Errorf("left behind after the outages and deletes: %s", name)
	}
	t.Logf("FIGURE restart leaks: %d (%s)", left.count(), left)
	t.Logf("FIGURE restart leaks of calls cut by an outage: %d %v", len(cut), cut)
	t.Logf("FIGURE restart leaks of nothing the load knows failed: %d %v", len(other), other)
	// The environment is left clean whatever was found.
	removeCut(t, left.all())
	if rest := countLeaks(t, stemcellCID); rest.count() != 0 {
		t.Errorf("after removing what was left: %v", rest.all())
	}
}

// removeCut removes, with virsh and by hand, what the load left.
func removeCut(t *testing.T, names []string) {
	for _, name := range names {
		kind, obj, _ := strings.Cut(name, " ")
		switch kind {
		case "domain":
			env.Virsh("destroy", obj)
			if out, err := env.Virsh("undefine", obj); err != nil {
				t.Errorf("undefine %s: %s", obj, out)
			}
		}
	}
	for _, name := range names {
		kind, obj, _ := strings.Cut(name, " ")
		switch kind {
		case "volume":
			if out, err := env.Virsh("vol-delete", "--pool", env.Pool, obj); err != nil {
				t.Errorf("vol-delete %s: %s", obj, out)
			}
		case "file":
			os.Remove(filepath.Join(env.StoreDir, obj))
		case "lock":
			os.Remove(filepath.Join(env.StoreDir, "locks", strings.TrimPrefix(obj, "file ")))
		}
	}
}

// bounceLibvirtd sends sig to the private libvirtd, waits for it to be
// gone, leaves it down for downFor, then starts it as in-namespace.sh
// does and waits until it answers.
func bounceLibvirtd(sig syscall.Signal, whileDown func()) (outage, error) {
	o := outage{signal: sig}
	raw, err := os.ReadFile(privatePIDFile)
	if err != nil {
		return o, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return o, fmt.Errorf("%s: %v", privatePIDFile, err)
	}
	o.killed = time.Now()
	if err := syscall.Kill(pid, sig); err != nil {
		return o, fmt.Errorf("kill -%d %d: %v", sig, pid, err)
	}
	for deadline := time.Now().Add(30 * time.Second); !devenv.ProcessGone(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return o, fmt.Errorf("libvirtd %d still runs 30 s after signal %d", pid, sig)
		}
	}
	o.gone = time.Now()
	whileDown()
	time.Sleep(time.Until(o.gone.Add(downFor)))
	o.restarted = time.Now()
	if out, err := exec.Command("libvirtd", "-d", "-p", privatePIDFile).CombinedOutput(); err != nil {
		return o, fmt.Errorf("restarting libvirtd: %v: %s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := env.Virsh("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return o, fmt.Errorf("libvirtd did not answer within 30 s of its restart")
		}
	}
	o.ready = time.Now()
	return o, nil
}
