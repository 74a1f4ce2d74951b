// Package docker drives the built CPI binary with JSON on stdin, as a
// director does, against the real dockerd with runtime docker. It checks
// what it can through the docker CLI, a second client that shares no code
// with the CPI, and the test agent's reports in the container's log.
package docker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

const hostEnv = "BOSH_LIBVIRT_CPI_DOCKER"

// env is one test's CPI binary, config and store_dir.
type env struct {
	t        *testing.T
	client   cpiclient.Client
	storeDir string
	// made are the CIDs and names this test made, for the leak count.
	mu                    sync.Mutex
	vms, stemcells, disks []string
	networks              []string
	subnetOctet           int
}

var buildOnce struct {
	sync.Once
	dir, cpi, agent string
	err             error
}

// binaries builds cmd/cpi and cmd/test-agent (static) once per run.
func binaries(t *testing.T) (string, string) {
	t.Helper()
	buildOnce.Do(func() {
		buildOnce.dir, buildOnce.err = os.MkdirTemp("", "cpi-docker-bin-")
		if buildOnce.err != nil {
			return
		}
		buildOnce.cpi = filepath.Join(buildOnce.dir, "cpi")
		buildOnce.agent = filepath.Join(buildOnce.dir, "test-agent")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		for out, pkg := range map[string]string{buildOnce.cpi: "../../cmd/cpi", buildOnce.agent: "../../cmd/test-agent"} {
			cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if msg, err := cmd.CombinedOutput(); err != nil {
				buildOnce.err = fmt.Errorf("building %s: %v: %s", pkg, err, msg)
				return
			}
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.cpi, buildOnce.agent
}

// newEnv needs the daemon: $BOSH_LIBVIRT_CPI_DOCKER, or the local socket in
// CI; a daemon that does not answer fails the test.
func newEnv(t *testing.T) *env {
	t.Helper()
	host := os.Getenv(hostEnv)
	if host == "" && os.Getenv("CI") != "" {
		host = "unix:///var/run/docker.sock"
	}
	if host == "" {
		t.Skipf("%s not set: skipping the CPI-on-Docker suite (CI=true defaults it to the local socket)", hostEnv)
	}
	if out, err := exec.Command("docker", "-H", host, "version", "--format", "{{.Server.APIVersion}}").CombinedOutput(); err != nil {
		t.Fatalf("dockerd at %s must answer for this suite: %v: %s", host, err, out)
	}
	bin, _ := binaries(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	cfg := map[string]any{"runtime": "docker", "store_dir": store,
		"docker": map[string]any{"host": host},
		"agent":  map[string]any{"mbus": "https://mbus:secret-mbus-pw@0.0.0.0:6868"}}
	raw, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "cpi.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, client: cpiclient.Client{Binary: bin, ConfigPath: cfgPath}, storeDir: store}
	t.Cleanup(e.cleanup)
	return e
}

// call runs one CPI process and fails the test on an error answer.
func (e *env) call(method string, args ...any) json.RawMessage {
	e.t.Helper()
	raw, run, err := e.client.Call(method, args...)
	if err != nil {
		e.t.Fatalf("%s: %v\nstderr:\n%s", method, err, run.Stderr)
	}
	if strings.Contains(run.Stderr, "secret-mbus-pw") {
		e.t.Fatalf("%s: the CPI logged the mbus password", method)
	}
	return raw
}

func (e *env) callString(method string, args ...any) string {
	e.t.Helper()
	var s string
	if err := json.Unmarshal(e.call(method, args...), &s); err != nil {
		e.t.Fatalf("%s: result is not a string", method)
	}
	return s
}

func (e *env) remember(list *[]string, v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	*list = append(*list, v)
}

// stemcellImage writes the image of a warden stemcell: a tgz of a busybox
// root filesystem whose /sbin/init is the test agent (busybox-only: the
// Debian rootfs would cost minutes of CI per run for no further check).
func stemcellImage(t *testing.T, agent string) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed for the test rootfs: %v", err)
	}
	init, err := os.ReadFile(agent)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(h *tar.Header, body []byte) {
		h.Size, h.Mode = int64(len(body)), 0o755
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	for _, d := range []string{"bin/", "sbin/", "etc/", "tmp/", "proc/", "sys/", "dev/", "var/", "var/vcap/"} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox"}, bb)
	for _, c := range []string{"sh", "cat", "ls", "ip", "sleep", "mount", "umount"} {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + c, Linkname: "busybox"}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "sbin/init"}, init)
	tw.Close()
	gz.Close()
	path := filepath.Join(t.TempDir(), "image")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wardenStemcellProps are the cloud_properties of a warden stemcell's
// stemcell.MF, which the director passes to create_stemcell.
var wardenStemcellProps = map[string]any{"name": "bosh-warden-boshlite-ubuntu-noble", "version": "1.0",
	"infrastructure": "warden", "hypervisor": "boshlite", "disk_format": "files", "container_format": "bare",
	"os_type": "linux", "os_distro": "ubuntu", "architecture": "x86_64"}

func (e *env) createStemcell(image string) string {
	e.t.Helper()
	cid := e.callString("create_stemcell", image, wardenStemcellProps)
	e.remember(&e.stemcells, cid)
	return cid
}

// manualNetwork is a manual BOSH network on a Docker network the CPI
// creates (mode nat) with a subnet of this test's own.
func (e *env) manualNetwork(host int) (map[string]any, string, string) {
	e.t.Helper()
	e.mu.Lock()
	if e.subnetOctet == 0 {
		b := make([]byte, 1)
		rand.Read(b)
		e.subnetOctet = 10 + int(b[0])%200
		name := "cpi-dkit-" + randomHex(4)
		e.networks = append(e.networks, name)
	}
	octet, name := e.subnetOctet, e.networks[0]
	e.mu.Unlock()
	ip := fmt.Sprintf("10.231.%d.%d", octet, host)
	return map[string]any{"type": "manual", "ip": ip, "netmask": "255.255.255.0", "gateway": fmt.Sprintf("10.231.%d.1", octet),
		"default": []string{"dns", "gateway"}, "cloud_properties": map[string]any{"name": name, "mode": "nat"}}, ip, name
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *env) createVM(agentID, sc string, networks map[string]any) string {
	e.t.Helper()
	cid, run, err := e.client.CreateVM(agentID, sc, map[string]any{"cpus": 1, "memory": 128}, networks, map[string]any{}, nil)
	if err != nil {
		e.t.Fatalf("create_vm: %v\nstderr:\n%s", err, run.Stderr)
	}
	e.remember(&e.vms, cid)
	return cid
}

func (e *env) createDisk(sizeMiB int, vm string) string {
	e.t.Helper()
	cid := e.callString("create_disk", sizeMiB, map[string]any{}, vm)
	e.remember(&e.disks, cid)
	return cid
}

// docker runs the docker CLI against the suite's daemon.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	host := os.Getenv(hostEnv)
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	out, err := exec.Command("docker", append([]string{"-H", host}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %v: %v: %s", args, err, out)
	}
	return string(out)
}

// reports are the test agent's reports in the container's log.
func (e *env) reports(vm string) []guestcheck.Report {
	return guestcheck.ParseReports(docker(e.t, "logs", vm))
}

// waitReport waits (bounded) for a report matching match.
func (e *env) waitReport(vm, what string, match func(guestcheck.Report) bool) guestcheck.Report {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range e.reports(vm) {
			if r.Event == guestcheck.EventError {
				e.t.Fatalf("VM %s: the agent reports an error: %s", vm, r.Message)
			}
			if match(r) {
				return r
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.t.Fatalf("VM %s: no %s in 30 s; log:\n%s", vm, what, docker(e.t, "logs", vm))
	return guestcheck.Report{}
}

// countReports counts the reports matching match.
func (e *env) countReports(vm string, match func(guestcheck.Report) bool) int {
	n := 0
	for _, r := range e.reports(vm) {
		if match(r) {
			n++
		}
	}
	return n
}

// leftovers lists every object of this test still there: containers,
// images, volumes and networks through the docker CLI, and files under
// store_dir (disk images, snapshots, VM directories, lock files).
func (e *env) leftovers() []string {
	e.t.Helper()
	var left []string
	names := func(args ...string) []string { return strings.Fields(docker(e.t, args...)) }
	containers := names("ps", "-a", "--format", "{{.Names}}")
	volumes := names("volume", "ls", "--format", "{{.Name}}")
	for _, vm := range e.vms {
		if slices.Contains(containers, vm) {
			left = append(left, "container "+vm)
		}
		if slices.Contains(volumes, vm+"-ephemeral") {
			left = append(left, "volume "+vm+"-ephemeral")
		}
	}
	images := names("images", "--format", "{{.Repository}}:{{.Tag}}")
	for _, sc := range e.stemcells {
		if slices.Contains(images, "bosh-libvirt-cpi/stemcell:"+sc) {
			left = append(left, "image "+sc)
		}
	}
	nets := names("network", "ls", "--format", "{{.Name}}")
	for _, n := range e.networks {
		if slices.Contains(nets, n) {
			left = append(left, "network "+n)
		}
	}
	filepath.WalkDir(e.storeDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, "file "+strings.TrimPrefix(path, e.storeDir+"/"))
		}
		return nil
	})
	return left
}

// cleanup removes what a failed test left, through the CPI where it can.
func (e *env) cleanup() {
	for _, vm := range e.vms {
		e.client.Call("delete_vm", vm)
	}
	for _, d := range e.disks {
		e.client.Call("delete_disk", d)
	}
	for _, sc := range e.stemcells {
		e.client.Call("delete_stemcell", sc)
	}
	for _, n := range e.networks {
		exec.Command("docker", "network", "rm", n).Run()
	}
}

// deleteNetworks removes the Docker networks the CPI made for this test
// (no CPI method deletes networks: the director has none).
func (e *env) deleteNetworks() {
	for _, n := range e.networks {
		docker(e.t, "network", "rm", n)
	}
}
