// Package multihost runs one CPI binary against two libvirt hosts, as a
// director with one CPI per host (one availability zone each) does: the
// CPI config's properties reach every call in its context and select the
// host. Each host is a private libvirtd in namespaces of its own; one
// listens on TLS and is reached over qemu+tls:// (tls_test.go).
package multihost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

const moduleRoot = "../.."

// az is one availability zone: a host, the environment on it (pool,
// network, store_dir) and a client whose calls carry that host's CPI
// config in their context.
type az struct {
	host   *host
	env    *devenv.Env
	client cpiclient.Client
}

func TestMain(m *testing.M) {
	if _, run, err := devenv.SuiteURI("multi-host suite"); !run {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startAZ brings up a host and an environment on it; cleanup runs on the
// test's end, the environment's leak check failing the test.
func startAZ(t *testing.T, name, bridgeIP, tlsDir string) *az {
	t.Helper()
	h, err := startHost(moduleRoot, name, bridgeIP, tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	env, err := devenv.New(moduleRoot, h.uri, name)
	if err != nil {
		t.Fatalf("host %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("host %s left: %v", name, err)
		}
	})
	return &az{host: h, env: env}
}

// directorClients makes the calls of both zones go through one binary and
// one cpi.json (zone a's), zone b's host named only by the context, as
// manifests/cpi-config.yml does.
func directorClients(a, b *az) {
	for _, z := range []*az{a, b} {
		z.client = a.env.Client
		z.client.Context = map[string]any{
			"uri": z.host.uri, "storage_pool": z.env.Pool,
			"pool_path": filepath.Join(z.env.StoreDir, "pool"), "network": z.env.Network,
		}
	}
}

func requireTools(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the multi-host suite needs root: it makes namespaces and bind mounts for two private libvirtds (scripts/test.sh runs as root)")
	}
	for _, tool := range []string{"unshare", "nsenter", "libvirtd", "virtlogd", "virsh", "qemu-img"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s: scripts/host.sh install", tool)
		}
	}
}

// TestTwoHostsOneDirector: stemcells, VMs and disks made through each zone's
// context land on that zone's host only; every later call for them reaches
// that host; with one host's libvirtd down, its calls answer a retryable
// CloudError quickly while the other host keeps working, and once it is
// back its VM and disk are there as they were.
func TestTwoHostsOneDirector(t *testing.T) {
	requireTools(t)
	a := startAZ(t, "mha", "10.252.1.1", "")
	b := startAZ(t, "mhb", "10.252.2.1", "")
	directorClients(a, b)
	zones := []*az{a, b}

	stemcells, vms := map[*az]string{}, map[*az]string{}
	for _, z := range zones {
		image, err := devenv.BlankStemcellImage(t.TempDir(), "1G")
		if err != nil {
			t.Fatal(err)
		}
		sc := callAs[string](t, z, "create_stemcell", image, map[string]any{})
		stemcells[z] = sc
		t.Cleanup(func() { call(t, z, "delete_stemcell", sc) })
		vmCID, run, err := z.client.CreateVM("agent-"+z.host.name, sc, map[string]any{"cpus": 1, "memory": 256}, z.env.Networks(20), map[string]any{}, nil)
		if err != nil {
			t.Fatalf("create_vm on %s: %v\n%s", z.host.name, err, run.Stderr)
		}
		vms[z] = vmCID
	}

	t.Run("each object is on its own host only", func(t *testing.T) {
		for _, z := range zones {
			other := a
			if z == a {
				other = b
			}
			doms, err := z.env.Domains()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(doms, vms[z]) || slices.Contains(doms, vms[other]) {
				t.Errorf("host %s runs %v; want %s and not %s", z.host.name, doms, vms[z], vms[other])
			}
			vols, err := z.env.Volumes()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(vols, stemcells[z]) || slices.Contains(vols, stemcells[other]) {
				t.Errorf("pool of host %s holds %v; want %s and not %s", z.host.name, vols, stemcells[z], stemcells[other])
			}
			for _, asked := range []*az{z, other} {
				if got := callAs[bool](t, asked, "has_vm", vms[z]); got != (asked == z) {
					t.Errorf("has_vm %s through host %s's context = %v", vms[z], asked.host.name, got)
				}
			}
		}
	})

	diskB := callAs[string](t, b, "create_disk", 32, map[string]any{}, vms[b])
	mustCall(t, b, "attach_disk", vms[b], diskB)

	t.Run("a host that is down fails only its own calls, retryably", func(t *testing.T) {
		if err := b.host.killLibvirtd(); err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{"has_vm", "get_disks", "delete_vm"} {
			start := time.Now()
			_, run, err := b.client.Call(method, vms[b])
			var cpiErr *cpiclient.Error
			if !errors.As(err, &cpiErr) || cpiErr.Type != "Bosh::Clouds::CloudError" || !cpiErr.OkToRetry {
				t.Errorf("%s on the host that is down = %v; want a CloudError with ok_to_retry\n%s", method, err, run.Stderr)
			} else if !strings.Contains(cpiErr.Message, b.host.scratch) {
				t.Errorf("%s's error does not name the host's URI: %s", method, cpiErr.Message)
			}
			fmt.Printf("FIGURE host down: %s answered %s ok_to_retry=%v in %s\n", method, errType(err), cpiErr != nil && cpiErr.OkToRetry, time.Since(start).Round(time.Millisecond))
		}
		// The other host works on: a disk made, found, removed.
		diskA := callAs[string](t, a, "create_disk", 16, map[string]any{}, vms[a])
		if !callAs[bool](t, a, "has_disk", diskA) || !callAs[bool](t, a, "has_vm", vms[a]) {
			t.Errorf("host %s lost sight of its disk %s or VM %s while host %s was down", a.host.name, diskA, vms[a], b.host.name)
		}
		mustCall(t, a, "delete_disk", diskA)
	})

	t.Run("the host is back with its VM and disk", func(t *testing.T) {
		if err := b.host.startLibvirtd(); err != nil {
			t.Fatal(err)
		}
		if !callAs[bool](t, b, "has_vm", vms[b]) {
			t.Fatalf("after libvirtd came back, host %s has no %s", b.host.name, vms[b])
		}
		disks := callAs[[]string](t, b, "get_disks", vms[b])
		if !slices.Equal(disks, []string{diskB}) {
			t.Fatalf("get_disks %s = %v; want [%s]", vms[b], disks, diskB)
		}
	})

	// The blank stemcell boots no OS that would acknowledge a hot unplug:
	// delete_vm lets the attached disk go, as it does for the director.
	for _, z := range zones {
		mustCall(t, z, "delete_vm", vms[z])
	}
	if !callAs[bool](t, b, "has_disk", diskB) {
		t.Fatalf("delete_vm of %s took its persistent disk %s", vms[b], diskB)
	}
	mustCall(t, b, "delete_disk", diskB)
}

// callAs runs method through zone z and decodes its result as T; any error
// fails the test.
func callAs[T any](t *testing.T, z *az, method string, args ...any) T {
	t.Helper()
	var result T
	raw, run, err := z.client.Call(method, args...)
	if err != nil {
		t.Fatalf("%s on host %s: %v\n%s", method, z.host.name, err, run.Stderr)
	}
	if err := json.Unmarshal(raw, &result); err != nil {
		t.Fatalf("%s on host %s answered %s: %v", method, z.host.name, raw, err)
	}
	return result
}

// mustCall runs method through zone z; any error fails the test.
func mustCall(t *testing.T, z *az, method string, args ...any) {
	t.Helper()
	if _, run, err := z.client.Call(method, args...); err != nil {
		t.Fatalf("%s on host %s: %v\n%s", method, z.host.name, err, run.Stderr)
	}
}

// call is a cleanup's call: a failure is reported, the cleanup goes on.
func call(t *testing.T, z *az, method string, args ...any) {
	if _, run, err := z.client.Call(method, args...); err != nil {
		t.Errorf("%s on host %s: %v\n%s", method, z.host.name, err, run.Stderr)
	}
}

func errType(err error) string {
	var cpiErr *cpiclient.Error
	if errors.As(err, &cpiErr) {
		return cpiErr.Type
	}
	return fmt.Sprint(err)
}
