// Package reliability drives the built CPI binary as a busy director does,
// against a real libvirtd: several processes at once making mixed calls,
// and create calls killed with SIGKILL part-way. It counts what is left
// behind with virsh, a client that shares no code with the CPI, and prints
// FIGURE lines (calls, error types, leaks, orphans) for the notes.
//
// Its calls need no booted guest (the stemcell is a blank qcow2, whose VMs
// sit in the BIOS), so the default run stays within a few minutes on two
// cores under TCG.
package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

var env *devenv.Env

func TestMain(m *testing.M) {
	uri, run, err := devenv.SuiteURI("reliability suite")
	if !run {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if env, err = devenv.New("../..", uri, "rel"); err != nil {
		fmt.Fprintf(os.Stderr, "reliability setup failed: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if stemcell.cid != "" {
		env.Client.Call("delete_stemcell", stemcell.cid)
	}
	if stemcell.dir != "" {
		os.RemoveAll(stemcell.dir)
	}
	if err := env.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "reliability teardown: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

var stemcell struct {
	once sync.Once
	dir  string
	cid  string
	err  error
}

// importStemcell runs create_stemcell once for the suite, on a blank
// qcow2: create_vm and delete_vm work as on a real one, and no guest
// boots to compete for the CPU.
func importStemcell(t *testing.T) string {
	t.Helper()
	stemcell.once.Do(func() {
		if stemcell.dir, stemcell.err = os.MkdirTemp("", "rel-stemcell-"); stemcell.err != nil {
			return
		}
		image, err := devenv.BlankStemcellImage(stemcell.dir, "1G")
		if err != nil {
			stemcell.err = err
			return
		}
		stemcell.cid, _, stemcell.err = env.Client.CallString("create_stemcell", image, map[string]any{
			"name": "rel", "version": "1", "infrastructure": "openstack", "hypervisor": "kvm", "disk_format": "qcow2",
		})
	})
	if stemcell.err != nil {
		t.Fatal(stemcell.err)
	}
	return stemcell.cid
}

// vmProps are small VMs: a blank guest needs nothing more.
var vmProps = map[string]any{"cpus": 1, "memory": 128, "ephemeral_disk": 64}

// networks is one dynamic NIC on the environment's network: no static
// IPs, so parallel VMs never compete for an address.
func networks() map[string]any {
	return map[string]any{"dhcp": map[string]any{"type": "dynamic", "default": []string{"dns", "gateway"}, "cloud_properties": map[string]any{}}}
}

// tally counts calls and their answers across workers.
type tally struct {
	mu     sync.Mutex
	calls  map[string]int
	errors map[string]int
	failed []string
}

func newTally() *tally { return &tally{calls: map[string]int{}, errors: map[string]int{}} }

// call runs method as its own process and records the answer. A call that
// answers no JSON, exits non-zero or errors is a failure: every call the
// suite makes is valid.
func (ty *tally) call(client cpiclient.Client, method string, args ...any) (json.RawMessage, bool) {
	run, err := client.RunRaw(client.Request(method, args...))
	ty.mu.Lock()
	defer ty.mu.Unlock()
	ty.calls[method]++
	switch {
	case err != nil:
		ty.errors["no response"]++
		ty.failed = append(ty.failed, fmt.Sprintf("%s: %v", method, err))
		return nil, false
	case run.ExitCode != 0:
		ty.errors["exit code"]++
		ty.failed = append(ty.failed, fmt.Sprintf("%s: exit %d", method, run.ExitCode))
		return nil, false
	case run.Response.Error != nil:
		ty.errors[run.Response.Error.Type]++
		ty.failed = append(ty.failed, fmt.Sprintf("%s %v: %s: %s", method, args, run.Response.Error.Type, run.Response.Error.Message))
		return nil, false
	}
	return run.Response.Result, true
}

func (ty *tally) callString(client cpiclient.Client, method string, args ...any) (string, bool) {
	raw, ok := ty.call(client, method, args...)
	var s string
	if ok && json.Unmarshal(raw, &s) != nil {
		ty.mu.Lock()
		ty.failed = append(ty.failed, fmt.Sprintf("%s: result %s is not a string", method, raw))
		ty.mu.Unlock()
		return "", false
	}
	return s, ok
}

func (ty *tally) total() (calls, errors int) {
	for _, n := range ty.calls {
		calls += n
	}
	for _, n := range ty.errors {
		errors += n
	}
	return calls, errors
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// leaks are what the CPI left of the suite: domains using its store_dir,
// volumes in its pool (but the stemcell's, kept prefixes), libvirt
// networks with the run's prefix but its own, console logs and settings
// of live VMs, and lock files.
type leaks struct {
	domains, volumes, networks, files, locks []string
}

func (l leaks) count() int {
	return len(l.domains) + len(l.volumes) + len(l.networks) + len(l.files) + len(l.locks)
}

func (l leaks) String() string {
	return fmt.Sprintf("domains=%d volumes=%d networks=%d files=%d lock_files=%d",
		len(l.domains), len(l.volumes), len(l.networks), len(l.files), len(l.locks))
}

func (l leaks) all() []string {
	var out []string
	for _, group := range []struct {
		kind  string
		names []string
	}{{"domain", l.domains}, {"volume", l.volumes}, {"network", l.networks}, {"file", l.files}, {"lock file", l.locks}} {
		for _, n := range group.names {
			out = append(out, group.kind+" "+n)
		}
	}
	return out
}

func countLeaks(t *testing.T, keepVolumes ...string) leaks {
	t.Helper()
	var l leaks
	for _, left := range env.LeftOver(keepVolumes...) {
		kind, name, _ := strings.Cut(left, " ")
		switch kind {
		case "domain":
			l.domains = append(l.domains, name)
		case "volume":
			l.volumes = append(l.volumes, name)
		default:
			l.files = append(l.files, name)
		}
	}
	out, err := env.Virsh("net-list", "--all", "--name")
	if err != nil {
		t.Fatalf("virsh net-list: %s", out)
	}
	runPrefix := strings.TrimSuffix(env.Network, fmt.Sprint(os.Getpid())) // cpi-rel-
	for _, n := range strings.Fields(out) {
		if strings.HasPrefix(n, runPrefix) && strings.HasSuffix(n, fmt.Sprint(os.Getpid())) && n != env.Network {
			l.networks = append(l.networks, n)
		}
	}
	locks, _ := os.ReadDir(filepath.Join(env.StoreDir, "locks"))
	for _, f := range locks {
		l.locks = append(l.locks, f.Name())
	}
	return l
}
