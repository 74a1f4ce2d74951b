package docker

// Helpers for tests against a real dockerd. Every object a test makes is
// named with the test's prefix (cpi-dktest<hex>-<pid>-) and removed when it
// ends; nothing else on the daemon is touched.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// HostEnv names the daemon the tests run against.
const HostEnv = "BOSH_LIBVIRT_CPI_DOCKER"

// dockerHost is $BOSH_LIBVIRT_CPI_DOCKER; in CI (CI=true) the local socket
// when unset. Elsewhere, unset skips: a workstation may have no dockerd.
// A daemon that is named but does not answer fails the test.
func dockerHost(t *testing.T) string {
	t.Helper()
	host := os.Getenv(HostEnv)
	switch {
	case host != "":
	case os.Getenv("CI") != "":
		host = DefaultHost
	default:
		t.Skipf("%s not set: skipping tests against a real dockerd (CI=true defaults it to %s)", HostEnv, DefaultHost)
	}
	sweepOnce.Do(func() { sweepDeadRuns(host) })
	return host
}

// testEnv is one test's corner of the daemon.
type testEnv struct {
	t      *testing.T
	ctx    context.Context
	cfg    Config
	r      *Runtime
	sc     string // the stemcell CID, once imported
	netsMu sync.Mutex
	nets   []string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return newTestEnvWith(t, func(*Config) {})
}

// newTestEnvWith is newTestEnv with the config changed by adjust (another
// host to reach the same daemon by, say).
func newTestEnvWith(t *testing.T, adjust func(*Config)) *testEnv {
	t.Helper()
	host := dockerHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	cfg := Config{
		Host:        host,
		StoreDir:    t.TempDir(),
		NamePrefix:  fmt.Sprintf("cpi-dktest%s-%d-", randomHex(t, 4), os.Getpid()),
		StopTimeout: 2 * time.Second,
	}
	adjust(&cfg)
	r, err := Open(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatalf("dockerd at %s must answer for these tests: %v", cfg.Host, err)
	}
	e := &testEnv{t: t, ctx: ctx, cfg: r.cfg, r: r}
	t.Cleanup(func() { e.cleanup(); r.Close() })
	return e
}

// open is another connection with the same config, as a second CPI
// process would have.
func (e *testEnv) open() *Runtime {
	r, err := Open(e.ctx, e.cfg, testLogger(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// initScript is the test rootfs' PID 1: it records what it found before
// anything else ran, then waits to be stopped.
const initScript = `#!/bin/sh
mkdir -p /proof
if [ -f /var/vcap/bosh/warden-cpi-agent-env.json ]; then
  cat /var/vcap/bosh/warden-cpi-agent-env.json > /proof/settings-at-init
else
  echo missing > /proof/settings-missing
fi
echo boot >> /proof/boots
trap 'exit 0' TERM
while :; do sleep 1 & wait $!; done
`

// rootfsTgz is a tiny warden-style rootfs: busybox and the init script.
func rootfsTgz(t *testing.T) []byte {
	t.Helper()
	return rootfsTgzWith(t, []byte(initScript))
}

// rootfsTgzWith is the busybox rootfs with init as /sbin/init.
func rootfsTgzWith(t *testing.T, init []byte) []byte {
	t.Helper()
	return buildRootfsTgz(t, init, false)
}

// buildRootfsTgz is the busybox rootfs; with systemdLayout, init is
// /usr/lib/systemd/systemd behind Debian's links (/lib -> usr/lib,
// /sbin/init -> /lib/systemd/systemd), as a systemd stemcell has it.
func buildRootfsTgz(t *testing.T, init []byte, systemdLayout bool) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed for the test rootfs: %v", err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin/", "sbin/", "etc/", "tmp/", "proc/", "sys/", "dev/", "var/", "var/vcap/"} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox"}, bb)
	for _, c := range []string{"sh", "cat", "ls", "ip", "sleep", "df", "dd", "sync", "stat", "head", "wc", "mkdir", "echo", "grep", "rm", "sha256sum", "mount", "umount"} {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + c, Linkname: "busybox"}, nil)
	}
	if systemdLayout {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/"}, nil)
		add(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/lib/"}, nil)
		add(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/lib/systemd/"}, nil)
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "lib", Linkname: "usr/lib"}, nil)
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/lib/systemd/systemd"}, init)
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "sbin/init", Linkname: "/lib/systemd/systemd"}, nil)
	} else {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "sbin/init"}, init)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stemcell imports the test rootfs once per env.
func (e *testEnv) stemcell() string {
	e.t.Helper()
	if e.sc == "" {
		cid := stemcell.NewCID()
		if err := e.r.importRootfs(e.ctx, cid, bytes.NewReader(rootfsTgz(e.t))); err != nil {
			e.t.Fatal(err)
		}
		e.sc = cid
	}
	return e.sc
}

// settingsFor is a settings document with one network per NIC; the mbus
// carries a password, which must never reach a log.
func settingsFor(vmCID string, nics ...nicSpec) agentsettings.Settings {
	s := agentsettings.New("agent-"+vmCID[3:11], vmCID, config.Agent{Mbus: "https://mbus:" + secretPassword + "@0.0.0.0:6868"}, nil)
	for _, n := range nics {
		typ := "dynamic"
		if n.IP != "" {
			typ = "manual"
		}
		s.Networks[n.BOSHNetwork] = agentsettings.Network{Type: typ, IP: n.IP, DNS: []string{}, Default: []string{}}
	}
	return s
}

const secretPassword = "s3cret-mbus-pw"

// vmSpec is a small VM of the test stemcell.
func (e *testEnv) vmSpec(nics ...nicSpec) containerSpec {
	if len(nics) == 0 {
		nics = []nicSpec{{BOSHNetwork: "default"}}
	}
	return containerSpec{CID: vm.NewCID(), StemcellCID: e.stemcell(), CPUs: 1, MemoryMiB: 64, NICs: nics, Command: []string{"/bin/sh", "/sbin/init"}}
}

// createVM creates a VM and returns it with the settings it got.
func (e *testEnv) createVM(r *Runtime, spec containerSpec) agentsettings.Settings {
	e.t.Helper()
	s, err := r.createContainerVM(e.ctx, spec, settingsFor(spec.CID, spec.NICs...))
	if err != nil {
		e.t.Fatalf("create_vm: %v", err)
	}
	return s
}

// exec runs a command in the VM's container: its stdout and exit code.
func (e *testEnv) exec(cid string, cmd ...string) (string, int) {
	e.t.Helper()
	ex, err := e.r.api.ContainerExecCreate(e.ctx, e.r.name(cid), container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		e.t.Fatalf("exec %v in %s: %v", cmd, cid, err)
	}
	att, err := e.r.api.ContainerExecAttach(e.ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		e.t.Fatalf("exec %v in %s: %v", cmd, cid, err)
	}
	defer att.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil && err != io.EOF {
		e.t.Fatalf("exec %v in %s: reading output: %v", cmd, cid, err)
	}
	ins, err := e.r.api.ContainerExecInspect(e.ctx, ex.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if errOut.Len() > 0 {
		e.t.Logf("exec %v stderr: %s", cmd, strings.TrimSpace(errOut.String()))
	}
	return out.String(), ins.ExitCode
}

// mustExec fails the test unless the command exits 0.
func (e *testEnv) mustExec(cid string, cmd ...string) string {
	e.t.Helper()
	out, code := e.exec(cid, cmd...)
	if code != 0 {
		e.t.Fatalf("exec %v in %s: exit %d: %s", cmd, cid, code, out)
	}
	return out
}

// testNetwork names a network of this test's own and removes it at the end.
func (e *testEnv) testNetwork() (string, *Subnet) {
	name := e.cfg.NamePrefix + "net-" + randomHex(e.t, 2)
	b := make([]byte, 2)
	rand.Read(b)
	second, third := 200+int(b[0])%50, int(b[1])
	subnet := &Subnet{CIDR: fmt.Sprintf("10.%d.%d.0/24", second, third), Gateway: fmt.Sprintf("10.%d.%d.1", second, third)}
	e.netsMu.Lock()
	e.nets = append(e.nets, name)
	e.netsMu.Unlock()
	return name, subnet
}

// leftovers lists what of this test's is still on the daemon and in the
// store (VM directories, mounts under the store).
func (e *testEnv) leftovers() []string {
	e.t.Helper()
	var out []string
	prefixArgs := prefixFilter(e.cfg.NamePrefix)
	cs, err := e.r.api.ContainerList(e.ctx, container.ListOptions{All: true, Filters: prefixArgs})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range cs {
		out = append(out, "container "+containerName(c))
	}
	vs, err := e.r.api.VolumeList(e.ctx, volume.ListOptions{Filters: prefixArgs})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, v := range vs.Volumes {
		out = append(out, "volume "+v.Name)
	}
	ns, err := e.r.api.NetworkList(e.ctx, network.ListOptions{Filters: prefixArgs})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	vms, _ := filepath.Glob(filepath.Join(e.cfg.StoreDir, "vms", "*"))
	for _, v := range vms {
		out = append(out, "vm dir "+v)
	}
	for _, m := range mountsUnder(e.cfg.StoreDir) {
		out = append(out, "mount "+m)
	}
	return out
}

// mountsUnder lists mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(unescapeMountinfo(fields[4]), abs+"/") {
			out = append(out, unescapeMountinfo(fields[4]))
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// cleanup removes everything named with the test's prefix and every mount
// under its store, then reports what it had to remove beyond the test's
// own networks and stemcell (which tests leave on purpose).
func (e *testEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api := e.r.api
	prefixArgs := prefixFilter(e.cfg.NamePrefix)
	if cs, err := api.ContainerList(ctx, container.ListOptions{All: true, Filters: prefixArgs}); err == nil {
		for _, c := range cs {
			e.t.Logf("cleanup: removing container %s", containerName(c))
			api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
	}
	if vs, err := api.VolumeList(ctx, volume.ListOptions{Filters: prefixArgs}); err == nil {
		for _, v := range vs.Volumes {
			e.t.Logf("cleanup: removing volume %s", v.Name)
			api.VolumeRemove(ctx, v.Name, true)
		}
	}
	for _, n := range e.nets {
		api.NetworkRemove(ctx, n)
	}
	for _, m := range mountsUnder(e.cfg.StoreDir) {
		e.t.Logf("cleanup: unmounting %s", m)
		unmount(m)
	}
	imgs, err := api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", imageRepo+":"+e.cfg.NamePrefix+"*"))})
	if err == nil {
		for _, img := range imgs {
			api.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	}
}

func withMAC(n agentsettings.Network, mac string) agentsettings.Network {
	n.MAC = mac
	return n
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func networkInspectOpts() network.InspectOptions { return network.InspectOptions{} }

func networkListByName(name string) network.ListOptions {
	return network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))}
}

// prefixFilter selects the objects whose name has the test's prefix.
func prefixFilter(prefix string) filters.Args { return filters.NewArgs(filters.Arg("name", prefix)) }

// deleteStemcellLeavingNothing deletes the test's stemcell last and fails
// the test for anything of its own still there.
func (e *testEnv) deleteStemcellLeavingNothing(sc string) {
	e.t.Helper()
	if err := e.r.DeleteStemcell(e.ctx, sc); err != nil {
		e.t.Fatal(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		e.t.Errorf("left behind: %v", left)
	}
}
