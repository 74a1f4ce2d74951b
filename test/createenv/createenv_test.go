// Package createenv runs the real `bosh create-env` against this CPI's
// release, with a stemcell holding the real bosh-agent (make agent-stemcell),
// on a private libvirtd in network and mount namespaces of its own: the bosh
// CLI talks to the guest at its IP, so its traffic must stay inside.
//
// TestCreateEnv prepares what needs the host (CPI release, test release, bosh
// CLI, stemcell), then re-runs itself under `unshare --net --mount` through
// in-namespace.sh, which starts libvirtd, virtlogd and the network.
//
// BOSH_LIBVIRT_CPI_CREATEENV=full (the default) runs create-env, a recreate,
// a disk migration, reboot_vm and delete-env; =reduced (the default under
// -short) runs create-env and delete-env only.
//
// TestCreateEnvDocker does the same on Docker (createenv_docker_test.go): the
// warden form of the agent stemcell (make agent-warden-stemcell), the CPI
// with runtime docker, a private dockerd in namespaces of its own.
package createenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

const (
	insideEnv = "BOSH_LIBVIRT_CPI_CREATEENV_INSIDE"
	modeEnv   = "BOSH_LIBVIRT_CPI_CREATEENV"
	hostIP    = "10.254.0.1"
	guestIP   = "10.254.0.10"
	cidr      = "10.254.0.0/24"
)

// paths the outer run prepares and the inner run uses, passed as JSON in env.
type prepared struct {
	Root, Scratch, Bosh, CPIRelease, MarkerRelease, Stemcell, Mode string
}

func TestCreateEnv(t *testing.T) {
	if ranInside(t, runInside) {
		return
	}
	// The suite brings its own libvirtd; SuiteURI only decides, like every
	// suite's, whether this is a test run (CI: always, and loudly).
	if _, run, err := devenv.SuiteURI("createenv"); err != nil {
		t.Fatal(err)
	} else if !run {
		return
	}
	p := prepare(t, "build/agent-stemcell.tgz", "libvirtd", "virtlogd", "virsh")
	runInNamespaces(t, p, "^TestCreateEnv$", "in-namespace.sh", p.Scratch, hostIP)
}

// runInNamespaces re-runs the test named by run under `unshare --net
// --mount`, through script (in test/createenv) with its arguments, which
// starts the private daemons and then the test binary.
func runInNamespaces(t *testing.T, p prepared, run, script string, args ...string) {
	t.Helper()
	start := time.Now()
	env, _ := json.Marshal(p)
	argv := append([]string{"--net", "--mount", "--propagation", "private", filepath.Join(p.Root, "test/createenv", script)}, args...)
	argv = append(argv, os.Args[0], "-test.run", run, "-test.v", "-test.timeout", "45m")
	cmd := exec.Command("unshare", argv...)
	cmd.Env = append(os.Environ(), insideEnv+"="+string(env))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("create-env suite inside the namespaces failed after %s: %v", time.Since(start).Round(time.Second), err)
	}
	t.Logf("FIGURE suite inside namespaces (%s): %s", p.Mode, time.Since(start).Round(time.Second))
}

// releases are built once per test binary: both suites deploy the same.
var releases struct {
	once                           sync.Once
	dir, bosh, cpi, marker, failed string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if releases.dir != "" {
		os.RemoveAll(releases.dir)
	}
	os.Exit(code)
}

// prepare builds everything that needs the host (the Go module proxy): the
// CPI release, the marker release and the bosh CLI (once for both suites);
// the stemcell (relative to the repository root) must exist.
func prepare(t *testing.T, stemcellPath string, daemonTools ...string) prepared {
	t.Helper()
	for _, tool := range append([]string{"unshare", "ip", "mount"}, daemonTools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("createenv needs %s: scripts/host.sh install", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("createenv needs root: it makes namespaces and bind mounts for a private daemon")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mode := os.Getenv(modeEnv)
	switch {
	case mode == "" && testing.Short():
		mode = "reduced"
	case mode == "":
		mode = "full"
	}
	if mode != "full" && mode != "reduced" {
		t.Fatalf("%s=%q: want full or reduced", modeEnv, mode)
	}
	stemcell := filepath.Join(root, stemcellPath)
	if _, err := os.Stat(stemcell); err != nil {
		t.Fatalf("no agent stemcell %s (make agent-stemcell / agent-warden-stemcell; scripts/test.sh builds them): %v", stemcellPath, err)
	}
	scratch, err := os.MkdirTemp("", "createenv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(scratch) })
	// QEMU runs as its own user and must reach the pool under store_dir.
	if err := os.Chmod(scratch, 0o711); err != nil {
		t.Fatal(err)
	}
	p := prepared{Root: root, Scratch: scratch, Stemcell: stemcell, Mode: mode}
	releases.once.Do(func() { buildReleases(t, root) })
	if releases.failed != "" {
		t.Fatalf("building the releases failed (in an earlier test): %s", releases.failed)
	}
	p.Bosh, p.CPIRelease, p.MarkerRelease = releases.bosh, releases.cpi, releases.marker
	return p
}

// buildReleases makes the bosh CLI, the CPI release and the marker release
// into a directory of their own, kept until TestMain ends.
func buildReleases(t *testing.T, root string) {
	t.Helper()
	releases.failed = "did not finish"
	dir, err := os.MkdirTemp("", "createenv-releases-")
	if err != nil {
		t.Fatal(err)
	}
	releases.dir = dir
	releases.bosh = strings.TrimSpace(mustRun(t, root, 10*time.Minute, nil, filepath.Join(root, "scripts/bosh-cli.sh")))
	releases.cpi = filepath.Join(dir, "cpi-release.tgz")
	timed(t, "create-release (CPI)", func() {
		mustRun(t, root, 15*time.Minute, []string{"RELEASE_DIR=" + filepath.Join(dir, "cpi-release")},
			filepath.Join(root, "scripts/create-release.sh"), releases.cpi)
	})
	markerDir := filepath.Join(dir, "marker-release")
	mustRun(t, root, time.Minute, nil, "cp", "-r", filepath.Join(root, "test/createenv/assets/release"), markerDir)
	releases.marker = filepath.Join(dir, "marker-release.tgz")
	mustRun(t, markerDir, 2*time.Minute, nil, releases.bosh, "create-release", "--force", "--non-interactive", "--tarball="+releases.marker)
	releases.failed = ""
}

// deployment is one create-env deployment inside the namespaces.
type deployment struct {
	t        *testing.T
	p        prepared
	home     string
	storeDir string
	markerID string
	cliLog   *os.File
	// dockerHost is the private dockerd (TestCreateEnvDocker); "" on libvirt.
	dockerHost string
}

func runInside(t *testing.T, p prepared) {
	uri := os.Getenv(devenv.URIEnv)
	if uri == "" {
		t.Fatalf("in-namespace.sh gave no %s", devenv.URIEnv)
	}
	d, deployed := newDeployment(t, p, "", (*deployment).dumpForPostMortem)
	suiteStart := time.Now()

	// 1. create-env: VM, agent, compile on the VM, disk, job under monit.
	*deployed = true
	firstVM, firstDisk := d.firstCreateEnv("create-env", 40*time.Minute, func(vm string) { d.checkRunning(uri, vm) })
	disks := []string{firstDisk}

	if p.Mode == "full" {
		// 2. recreate (memory changed): a new VM, the same disk and its data.
		secondVM := d.recreateKeepingDisk("recreate", 30*time.Minute, firstVM, firstDisk)
		d.waitMarker(secondVM, 2, 2*time.Minute)

		// 3. disk size changed: the CLI recreates the VM (create-env does on
		// any change), makes a new disk and migrates the data to it.
		d.timed("disk migration", func() { d.mustBosh(30*time.Minute, "create-env", d.manifestArgs(1280, 2048)...) })
		st := d.state()
		migrated, thirdVM := st.disk(t), st.vm(t)
		if migrated == firstDisk {
			t.Fatalf("disk size change kept disk %s: want a migration to a new disk", firstDisk)
		}
		disks = append(disks, migrated)
		d.waitMarker(thirdVM, 3, 2*time.Minute)

		// 4. reboot_vm after the migration: the agent comes up with the new disk.
		d.timed("reboot_vm to agent", func() {
			d.cpiCall("reboot_vm", thirdVM)
			d.pingAgent(8 * time.Minute)
		})
		d.waitMarker(thirdVM, 4, 3*time.Minute)
		d.timed("create-env after reboot", func() { d.mustBosh(15*time.Minute, "create-env", d.manifestArgs(1280, 2048)...) })

		// 5. A host reboot: libvirtd starts the VM again by itself
		// (autostart), the agent answers, the job runs again with its disk,
		// and create-env finds the environment as it left it.
		before := d.markerStarts(thirdVM)
		d.timed("host reboot to agent", func() {
			d.rebootHost(uri)
			d.checkRunning(uri, thirdVM)
			d.pingAgent(8 * time.Minute)
		})
		d.waitMarker(thirdVM, before+1, 3*time.Minute)
		d.timed("create-env after host reboot", func() { d.mustBosh(15*time.Minute, "create-env", d.manifestArgs(1280, 2048)...) })
		if vm := d.state().vm(t); vm != thirdVM {
			t.Fatalf("create-env after the host reboot replaced VM %s with %s: want it kept", thirdVM, vm)
		}
	}

	// 6. The agent found every persistent disk by id (needs disk CIDs that
	// are the guest's by-id link names: the CPI's CID scheme).
	d.checkDisksResolvedByID(disks)

	// 7. delete-env leaves nothing behind.
	d.timed("delete-env", func() { d.mustBosh(15*time.Minute, "delete-env", d.manifestArgs(1280, 2048)...) })
	*deployed = false
	d.checkNothingLeft(uri)
	t.Logf("FIGURE suite inside (%s): %s", p.Mode, time.Since(suiteStart).Round(time.Second))
}

// ranInside runs inside with what the outer run prepared when this is
// the re-run inside the namespaces, and tells whether it was.
func ranInside(t *testing.T, inside func(*testing.T, prepared)) bool {
	if os.Getenv(insideEnv) == "" {
		return false
	}
	var p prepared
	if err := json.Unmarshal([]byte(os.Getenv(insideEnv)), &p); err != nil {
		t.Fatalf("decoding %s: %v", insideEnv, err)
	}
	inside(t, p)
	return true
}

// newDeployment is the deployment a suite drives (dockerHost empty for
// QEMU); on failure its cleanup dumps what postMortem shows and, once
// *deployed is set, runs delete-env.
func newDeployment(t *testing.T, p prepared, dockerHost string, postMortem func(*deployment)) (*deployment, *bool) {
	d := &deployment{t: t, p: p, home: filepath.Join(p.Scratch, "home"), storeDir: filepath.Join(p.Scratch, "store"), dockerHost: dockerHost}
	d.markerID = randomHex(8)
	var err error
	if d.cliLog, err = os.Create(filepath.Join(p.Scratch, "cli.log")); err != nil {
		t.Fatal(err)
	}
	deployed := new(bool)
	t.Cleanup(func() {
		if t.Failed() {
			postMortem(d)
			if *deployed {
				_ = d.bosh(10*time.Minute, "delete-env", d.manifestArgs(1024, 1024)...)
			}
		}
	})
	return d, deployed
}

func (d *deployment) manifestArgs(memory, diskSize int) []string {
	if d.dockerHost != "" {
		return d.dockerManifestArgs(memory, diskSize)
	}
	assets := filepath.Join(d.p.Root, "test/createenv/assets")
	sum := sha1File(d.t, d.p.Stemcell)
	return []string{
		filepath.Join(assets, "bosh.yml"),
		"--state", filepath.Join(d.p.Scratch, "state.json"),
		"--vars-store", filepath.Join(d.p.Scratch, "creds.yml"),
		"-o", filepath.Join(d.p.Root, "manifests/cpi.yml"),
		"-o", filepath.Join(d.p.Root, "manifests/use-local-release.yml"),
		"-o", filepath.Join(assets, "ops.yml"),
		"-v", "libvirt_cpi_release_path=" + d.p.CPIRelease,
		"-v", "marker_release_path=" + d.p.MarkerRelease,
		"-v", "stemcell_url=file://" + d.p.Stemcell,
		"-v", "stemcell_sha1=" + sum,
		"-v", "internal_cidr=" + cidr, "-v", "internal_gw=" + hostIP, "-v", "internal_ip=" + guestIP,
		"-v", "libvirt_network=createenv",
		"-v", "libvirt_uri=" + os.Getenv(devenv.URIEnv),
		"-v", "libvirt_uri_from_director=unused",
		"-v", "store_dir=" + d.storeDir,
		"-v", "marker_id=" + d.markerID,
		"-v", fmt.Sprintf("vm_memory=%d", memory),
		"-v", fmt.Sprintf("disk_size=%d", diskSize),
	}
}

// bosh runs the CLI with a HOME of the suite's own (~/.bosh/installations).
func (d *deployment) bosh(timeout time.Duration, command string, args ...string) error {
	args = append([]string{command}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.p.Bosh, append([]string{"--non-interactive", "--tty"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+d.home)
	var out bytes.Buffer
	w := io.MultiWriter(&out, d.cliLog, os.Stdout)
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(w, "\n$ bosh %s\n", args[0])
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("bosh %s did not finish within %s", args[0], timeout)
	}
	if err != nil {
		return fmt.Errorf("bosh %s: %v", args[0], err)
	}
	return nil
}

// firstCreateEnv deploys (1024 MiB memory, 1024 MiB disk): the VM runs
// (checkRunning), its agent answers and the job writes its first marker.
// It returns the VM and the disk the CLI's state records.
func (d *deployment) firstCreateEnv(label string, timeout time.Duration, checkRunning func(vm string)) (vm, disk string) {
	d.timed(label, func() { d.mustBosh(timeout, "create-env", d.manifestArgs(1024, 1024)...) })
	st := d.state()
	vm, disk = st.vm(d.t), st.disk(d.t)
	checkRunning(vm)
	d.pingAgent(time.Minute)
	d.waitMarker(vm, 1, 2*time.Minute)
	return vm, disk
}

// recreateKeepingDisk changes the memory (1280 MiB), so the CLI recreates
// the VM, and requires a new VM with the same disk; it returns the VM.
func (d *deployment) recreateKeepingDisk(label string, timeout time.Duration, oldVM, oldDisk string) string {
	d.timed(label, func() { d.mustBosh(timeout, "create-env", d.manifestArgs(1280, 1024)...) })
	st := d.state()
	vm := st.vm(d.t)
	if vm == oldVM {
		d.t.Fatalf("recreate kept VM %s: want a new one", oldVM)
	}
	if st.disk(d.t) != oldDisk {
		d.t.Fatalf("recreate changed the disk %s -> %s", oldDisk, st.disk(d.t))
	}
	return vm
}

func (d *deployment) mustBosh(timeout time.Duration, command string, args ...string) {
	d.t.Helper()
	if err := d.bosh(timeout, command, args...); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deployment) timed(what string, f func()) {
	start := time.Now()
	f()
	d.t.Logf("FIGURE %s: %s", what, time.Since(start).Round(time.Second))
}

type cliState struct {
	CurrentVMCID string `json:"current_vm_cid"`
	Disks        []struct {
		CID string `json:"cid"`
	} `json:"disks"`
}

func (s cliState) vm(t *testing.T) string {
	t.Helper()
	if s.CurrentVMCID == "" {
		t.Fatal("state.json names no current VM")
	}
	return s.CurrentVMCID
}

func (s cliState) disk(t *testing.T) string {
	t.Helper()
	if len(s.Disks) != 1 {
		t.Fatalf("state.json holds %d disks, want 1: %+v", len(s.Disks), s.Disks)
	}
	return s.Disks[0].CID
}

func (d *deployment) state() cliState {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.p.Scratch, "state.json"))
	if err != nil {
		d.t.Fatal(err)
	}
	var s cliState
	if err := json.Unmarshal(b, &s); err != nil {
		d.t.Fatalf("state.json: %v", err)
	}
	return s
}

func (d *deployment) virsh(uri string, args ...string) string {
	d.t.Helper()
	return mustRun(d.t, "", time.Minute, nil, "virsh", append([]string{"-c", uri}, args...)...)
}

func (d *deployment) checkRunning(uri, vm string) {
	d.t.Helper()
	if state := strings.TrimSpace(d.virsh(uri, "domstate", vm)); state != "running" {
		d.t.Fatalf("domain %s is %q after create-env, want running", vm, state)
	}
}

func (d *deployment) consoleLog(vm string) string {
	if d.dockerHost != "" {
		return d.dockerMarkerLog(vm)
	}
	b, _ := os.ReadFile(filepath.Join(d.storeDir, "console", vm+".log"))
	return string(b)
}

// allConsoleLogs joins every console log under store_dir, including those the
// CPI moved aside.
func (d *deployment) allConsoleLogs() string {
	var all strings.Builder
	_ = filepath.WalkDir(filepath.Join(d.storeDir, "console"), func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(path)
			all.Write(b)
		}
		return nil
	})
	return all.String()
}

var markerLine = regexp.MustCompile(`CREATEENV-MARKER id=(\S*) starts=(\d+) store=(\S+) compiled-on=(\S+)`)

// waitMarker waits for the marker job's report of its n-th (or a later) start: it proves
// the job runs under monit, the package compiled on the VM is installed, the
// agent mounted the persistent disk, and the disk kept the first start's data.
func (d *deployment) waitMarker(vm string, starts int, timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range markerLine.FindAllStringSubmatch(d.consoleLog(vm), -1) {
			if n, _ := strconv.Atoi(m[2]); n < starts {
				continue
			}
			if m[1] != d.markerID {
				d.t.Fatalf("marker start %d on %s reports id %q, want %q: the disk's data did not survive", starts, vm, m[1], d.markerID)
			}
			if want := d.storeSource(); !want.MatchString(m[3]) {
				d.t.Fatalf("marker start %d: /var/vcap/store is %q, want %s", starts, m[3], want)
			}
			d.t.Logf("marker start %d on %s: store %s, compiled on %s", starts, vm, m[3], m[4])
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no report of marker start %d in %s's console log within %s", starts, vm, timeout)
		}
		time.Sleep(2 * time.Second)
	}
}

// storeSource is what /var/vcap/store must be mounted from: the agent's
// partition of the virtio disk on QEMU; on Docker the loop device of the
// CPI's disk image, which the agent bind-mounted from its hint.
func (d *deployment) storeSource() *regexp.Regexp {
	if d.dockerHost != "" {
		return regexp.MustCompile(`^/dev/loop[0-9]+(\[/\])?$`)
	}
	return regexp.MustCompile(`^/dev/vd[a-z]+1$`)
}

// markerStarts is the highest start count the marker job reported on vm.
func (d *deployment) markerStarts(vm string) int {
	most := 0
	for _, m := range markerLine.FindAllStringSubmatch(d.consoleLog(vm), -1) {
		if n, _ := strconv.Atoi(m[2]); n > most {
			most = n
		}
	}
	return most
}

// The private host's daemons, as in-namespace.sh starts them.
var hostDaemons = [][]string{
	{"virtlogd", "-d", "-p", "/run/libvirt/virtlogd.pid"},
	{"libvirtd", "-d", "-p", "/run/libvirt/libvirtd.pid"},
}

// shutdownWait is how long a reboot waits for the guests' ACPI shutdown
// (the stemcell under TCG often takes longer: it is then destroyed, which
// the VM must survive too).
const shutdownWait = 45 * time.Second

// rebootHost does to the private libvirt host what a reboot does: every
// guest shut down (libvirt-guests' default), destroyed if it does not
// stop within shutdownWait, networks down, libvirtd and virtlogd stopped, /run/libvirt
// emptied (a reboot empties /run, where libvirtd notes that it already
// autostarted), then the daemons started again, as the boot would.
func (d *deployment) rebootHost(uri string) {
	d.t.Helper()
	running := strings.Fields(d.virsh(uri, "list", "--name"))
	for _, dom := range running {
		d.virsh(uri, "shutdown", dom)
	}
	deadline := time.Now().Add(shutdownWait)
	for len(strings.Fields(d.virsh(uri, "list", "--name"))) > 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
	}
	for _, dom := range strings.Fields(d.virsh(uri, "list", "--name")) {
		d.t.Logf("domain %s did not shut down within %s: destroyed, as a power cut would", dom, shutdownWait)
		d.virsh(uri, "destroy", dom)
	}
	// A reboot takes the networks' bridges and firewall rules with it; the
	// definitions and their autostart flags stay.
	for _, net := range strings.Fields(d.virsh(uri, "net-list", "--name")) {
		d.virsh(uri, "net-destroy", net)
	}
	for i := len(hostDaemons) - 1; i >= 0; i-- {
		stopByPidFile(d.t, hostDaemons[i][len(hostDaemons[i])-1])
	}
	entries, _ := os.ReadDir("/run/libvirt")
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join("/run/libvirt", e.Name())); err != nil {
			d.t.Fatal(err)
		}
	}
	for _, daemon := range hostDaemons {
		mustRun(d.t, "", time.Minute, nil, daemon[0], daemon[1:]...)
	}
	deadline = time.Now().Add(time.Minute)
	for exec.Command("virsh", "-c", uri, "version").Run() != nil {
		if time.Now().After(deadline) {
			d.t.Fatalf("libvirtd did not answer at %s within a minute of its restart", uri)
		}
		time.Sleep(500 * time.Millisecond)
	}
	d.t.Logf("host rebooted: %d domain(s) were running: %v", len(running), running)
}

// stopByPidFile ends the daemon whose pid file is path and waits until it
// is gone.
func stopByPidFile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file of a daemon to stop: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for !devenv.ProcessGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d (%s) did not exit within 30 s of SIGTERM", pid, path)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pingAgent asks the agent over its mbus (https, the CLI's CA) until it
// answers pong.
func (d *deployment) pingAgent(timeout time.Duration) {
	d.t.Helper()
	var creds struct {
		Password string `yaml:"mbus_bootstrap_password"`
		SSL      struct {
			CA string `yaml:"ca"`
		} `yaml:"mbus_bootstrap_ssl"`
	}
	b, err := os.ReadFile(filepath.Join(d.p.Scratch, "creds.yml"))
	if err != nil {
		d.t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &creds); err != nil {
		d.t.Fatalf("creds.yml: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(creds.SSL.CA)) {
		d.t.Fatal("creds.yml: no mbus CA")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := fmt.Sprintf("https://mbus:%s@%s:6868/agent", creds.Password, guestIP)
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"method":"ping","arguments":[],"reply_to":"createenv"}`))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"pong"`) {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = strings.ReplaceAll(err.Error(), creds.Password, "***")
		}
		time.Sleep(3 * time.Second)
	}
	d.t.Fatalf("agent at %s did not answer ping within %s (last: %s)", guestIP, timeout, last)
}

// cpiCall runs the CPI binary the CLI compiled and installed. The CLI deletes
// the rendered job (and its cpi.json) after every run, so the call gets a
// cpi.json of its own naming the same daemon, store_dir and hypervisor.
func (d *deployment) cpiCall(method string, args ...any) {
	d.t.Helper()
	cpis, _ := filepath.Glob(filepath.Join(d.home, ".bosh/installations/*/packages/libvirt_cpi/bin/cpi"))
	if len(cpis) != 1 {
		d.t.Fatalf("want one installed CPI under %s/.bosh/installations, found %v", d.home, cpis)
	}
	config := filepath.Join(d.p.Scratch, "cpi.json")
	cfg := map[string]any{"uri": os.Getenv(devenv.URIEnv), "store_dir": d.storeDir, "hypervisor": "qemu",
		"agent": map[string]any{"mbus": "https://mbus:unused@0.0.0.0:6868"}}
	if d.dockerHost != "" {
		cfg = map[string]any{"runtime": "docker", "docker": map[string]any{"host": d.dockerHost}, "store_dir": d.storeDir,
			"agent": map[string]any{"mbus": "https://mbus:unused@0.0.0.0:6868"}}
	}
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(config, raw, 0o600); err != nil {
		d.t.Fatal(err)
	}
	req, _ := json.Marshal(map[string]any{"method": method, "arguments": args,
		"context":     map[string]any{"director_uuid": "createenv", "vm": map[string]any{"stemcell": map[string]any{"api_version": 3}}},
		"api_version": 2})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cpis[0], "-configPath", config)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var resp struct {
		Error any `json:"error"`
	}
	if err != nil || json.Unmarshal(out, &resp) != nil || resp.Error != nil {
		d.t.Fatalf("CPI %s: %v\nstdout: %s\nstderr: %s", method, err, out, stderr.String())
	}
}

// checkDisksResolvedByID reads the agent's log from the console logs: every
// persistent disk must have been found by id, never through the fallback.
func (d *deployment) checkDisksResolvedByID(disks []string) {
	d.t.Helper()
	logs := d.allConsoleLogs()
	for _, cid := range disks {
		if strings.Contains(logs, fmt.Sprintf("Failed to get device real path by disk ID: '%s'", cid)) {
			d.t.Errorf("the agent did not find persistent disk %s by id and fell back to the mapped resolver (the disk CID must be the guest's by-id link name)", cid)
		}
		if !strings.Contains(logs, fmt.Sprintf("Resolved disk {ID:%s ", cid)) {
			d.t.Errorf("the agent's log never says it resolved persistent disk %s by id", cid)
		}
	}
}

// checkNothingLeft: no domain, no volume, and in store_dir nothing but lock
// files, console logs and the (empty) pool directory.
func (d *deployment) checkNothingLeft(uri string) {
	d.t.Helper()
	if doms := strings.TrimSpace(d.virsh(uri, "list", "--all", "--name")); doms != "" {
		d.t.Errorf("domains left after delete-env: %s", doms)
	}
	if pools := strings.Fields(d.virsh(uri, "pool-list", "--all", "--name")); len(pools) > 0 {
		for _, pool := range pools {
			if vols := strings.TrimSpace(d.virsh(uri, "vol-list", pool)); strings.Count(vols, "\n") > 1 {
				d.t.Errorf("volumes left in pool %s after delete-env:\n%s", pool, vols)
			}
		}
	}
	_ = filepath.WalkDir(d.storeDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(d.storeDir, path)
		if !strings.HasPrefix(rel, "locks/") && !strings.HasPrefix(rel, "console/") {
			d.t.Errorf("left in store_dir after delete-env: %s", rel)
		}
		return nil
	})
}

// dumpForPostMortem prints the tail of every console log and of the CLI's output.
func (d *deployment) dumpForPostMortem() {
	logs, _ := filepath.Glob(filepath.Join(d.storeDir, "console", "*"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		fmt.Printf("\n=== tail of console log %s\n%s\n", l, tail(string(b), 80))
	}
	b, _ := os.ReadFile(filepath.Join(d.p.Scratch, "cli.log"))
	fmt.Printf("\n=== tail of the bosh CLI output\n%s\n", tail(string(b), 60))
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func timed(t *testing.T, what string, f func()) {
	start := time.Now()
	f()
	t.Logf("FIGURE %s: %s", what, time.Since(start).Round(time.Second))
}

func mustRun(t *testing.T, dir string, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v (timeout %s)\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, timeout, tail(string(out), 30), tail(stderr.String(), 30))
	}
	return string(out)
}

func sha1File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
