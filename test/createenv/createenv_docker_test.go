package createenv

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// dockerHostEnv is where docker-in-namespace.sh names its private dockerd.
const dockerHostEnv = "BOSH_LIBVIRT_CPI_DOCKER"

// dockerNetwork is the Docker network the CPI creates (mode nat) from the
// manual network's subnet; its bridge is the namespace's 10.254.0.1.
const dockerNetwork = "createenv"

// TestCreateEnvDocker runs the real `bosh create-env` with the CPI's runtime
// docker and the warden form of the agent stemcell (systemd as PID 1, the
// real bosh-agent reading the warden settings file), on a private dockerd in
// network and mount namespaces of its own: create-env (the agent answers
// at the container's IP, compiles the marker package, mounts the persistent
// disk through its hint, the job runs under monit), in full mode a recreate
// that keeps the disk and its data and a reboot_vm after which the agent
// answers and the disk is at its hint again, then delete-env leaving no container,
// volume, image or disk file.
func TestCreateEnvDocker(t *testing.T) {
	if ranInside(t, runInsideDocker) {
		return
	}
	if _, run, err := devenv.SuiteURI("createenv docker"); err != nil {
		t.Fatal(err)
	} else if !run {
		return
	}
	p := prepare(t, "build/agent-stemcell-warden.tgz", "dockerd", "/usr/bin/docker")
	runInNamespaces(t, p, "^TestCreateEnvDocker$", "docker-in-namespace.sh", p.Scratch)
}

func runInsideDocker(t *testing.T, p prepared) {
	host := os.Getenv(dockerHostEnv)
	if host == "" {
		t.Fatalf("docker-in-namespace.sh gave no %s", dockerHostEnv)
	}
	d, deployed := newDeployment(t, p, host, (*deployment).dumpDockerForPostMortem)
	suiteStart := time.Now()

	*deployed = true
	firstVM, firstDisk := d.firstCreateEnv("create-env (docker)", 30*time.Minute, d.checkContainerRunning)

	if p.Mode == "full" {
		// A recreate (memory changed): a new container, the same disk,
		// moved from one container to the other, with its data.
		secondVM := d.recreateKeepingDisk("recreate (docker)", 20*time.Minute, firstVM, firstDisk)
		if out := d.docker("ps", "-aq", "--filter", "name=^/"+firstVM+"$"); strings.TrimSpace(out) != "" {
			t.Fatalf("the first container %s is still there after the recreate", firstVM)
		}
		d.checkContainerRunning(secondVM)
		d.waitMarker(secondVM, 2, 2*time.Minute)

		// reboot_vm restarts the container: the agent comes up again from
		// the same settings and answers, the disk is at its hint again.
		// (bosh-agent's bootstrap remounts only a partitioned disk, `sfdisk
		// -d` of the hint: a warden stemcell's bind-mounted disk waits for
		// the director's mount_disk, which this suite does not send.)
		d.timed("reboot_vm to agent (docker)", func() {
			d.cpiCall("reboot_vm", secondVM)
			d.checkContainerRunning(secondVM)
			d.pingAgent(3 * time.Minute)
		})
		hint := "/warden-cpi-dev/" + firstDisk
		if src := strings.TrimSpace(d.docker("exec", secondVM, "findmnt", "-n", "-o", "SOURCE", hint)); !d.storeSource().MatchString(src) {
			t.Fatalf("after reboot_vm the disk's hint %s is mounted from %q, want its loop device", hint, src)
		}
	}

	d.timed("delete-env (docker)", func() { d.mustBosh(10*time.Minute, "delete-env", d.manifestArgs(1280, 1024)...) })
	*deployed = false
	d.checkNothingLeftOnDocker()
	t.Logf("FIGURE suite inside (docker, %s): %s", p.Mode, time.Since(suiteStart).Round(time.Second))
}

func (d *deployment) dockerManifestArgs(memory, diskSize int) []string {
	assets := filepath.Join(d.p.Root, "test/createenv/assets")
	return []string{
		filepath.Join(assets, "bosh.yml"),
		"--state", filepath.Join(d.p.Scratch, "state.json"),
		"--vars-store", filepath.Join(d.p.Scratch, "creds.yml"),
		"-o", filepath.Join(d.p.Root, "manifests/cpi.yml"),
		"-o", filepath.Join(d.p.Root, "manifests/use-local-release.yml"),
		"-o", filepath.Join(d.p.Root, "manifests/docker.yml"),
		"-o", filepath.Join(assets, "ops-docker.yml"),
		"-v", "libvirt_cpi_release_path=" + d.p.CPIRelease,
		"-v", "marker_release_path=" + d.p.MarkerRelease,
		"-v", "stemcell_url=file://" + d.p.Stemcell,
		"-v", "stemcell_sha1=" + sha1File(d.t, d.p.Stemcell),
		"-v", "internal_cidr=" + cidr, "-v", "internal_gw=" + hostIP, "-v", "internal_ip=" + guestIP,
		"-v", "docker_network=" + dockerNetwork,
		"-v", "docker_host=" + d.dockerHost,
		"-v", "store_dir=" + d.storeDir,
		"-v", "marker_id=" + d.markerID,
		"-v", fmt.Sprintf("vm_memory=%d", memory),
		"-v", fmt.Sprintf("disk_size=%d", diskSize),
	}
}

// docker runs the Docker CLI against the private daemon (the test's own
// view; the CPI talks to the API).
func (d *deployment) docker(args ...string) string {
	d.t.Helper()
	return mustRun(d.t, "", time.Minute, nil, "/usr/bin/docker", append([]string{"-H", d.dockerHost}, args...)...)
}

func (d *deployment) checkContainerRunning(vm string) {
	d.t.Helper()
	if state := strings.TrimSpace(d.docker("inspect", "-f", "{{.State.Status}}", vm)); state != "running" {
		d.t.Fatalf("container %s is %q after create-env, want running", vm, state)
	}
}

// dockerMarkerLog is the marker job's log file in the VM's container (a
// container has no console); "" while there is none.
func (d *deployment) dockerMarkerLog(vm string) string {
	out, err := exec.Command("/usr/bin/docker", "-H", d.dockerHost, "exec", vm, "cat", "/var/vcap/sys/log/marker/report.log").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// checkNothingLeftOnDocker: no container, volume or image on the private
// daemon, no network but the one the CPI made for the manual network (kept
// for the next VM on it, like a libvirt network), and in store_dir nothing
// but lock files.
func (d *deployment) checkNothingLeftOnDocker() {
	d.t.Helper()
	for what, args := range map[string][]string{
		"containers": {"ps", "-aq"},
		"volumes":    {"volume", "ls", "-q"},
		"images":     {"images", "-aq"},
	} {
		if out := strings.TrimSpace(d.docker(args...)); out != "" {
			d.t.Errorf("%s left after delete-env: %s", what, strings.ReplaceAll(out, "\n", " "))
		}
	}
	for _, n := range strings.Fields(d.docker("network", "ls", "--format", "{{.Name}}")) {
		switch n {
		case "host", "none":
		case dockerNetwork:
			d.t.Logf("network %s (made by create_vm from the manual network's subnet) stays, as libvirt networks do", n)
		default:
			d.t.Errorf("network %s left after delete-env", n)
		}
	}
	_ = filepath.WalkDir(d.storeDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(d.storeDir, path)
		if !strings.HasPrefix(rel, "locks/") && !strings.Contains(rel, "/locks/") {
			d.t.Errorf("left in store_dir after delete-env: %s", rel)
		}
		return nil
	})
	if m := mountsBelow(d.storeDir); len(m) > 0 {
		d.t.Errorf("mounts left under store_dir after delete-env: %v", m)
	}
}

// mountsBelow lists mount points under dir in this mount namespace.
func mountsBelow(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// dumpDockerForPostMortem prints each container's output (systemd's and
// the agent's console), the marker logs and the tails of the CLI's and
// dockerd's logs.
func (d *deployment) dumpDockerForPostMortem() {
	out, _ := exec.Command("/usr/bin/docker", "-H", d.dockerHost, "ps", "-a", "--format", "{{.Names}} {{.Status}}").CombinedOutput()
	fmt.Printf("\n=== containers\n%s\n", out)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		name := fields[0]
		logs, _ := exec.Command("/usr/bin/docker", "-H", d.dockerHost, "logs", "--tail", "80", name).CombinedOutput()
		fmt.Printf("\n=== docker logs %s\n%s\n", name, logs)
		agent, _ := exec.Command("/usr/bin/docker", "-H", d.dockerHost, "exec", name, "journalctl", "-u", "bosh-agent", "-n", "80", "--no-pager").CombinedOutput()
		fmt.Printf("\n=== bosh-agent journal in %s\n%s\n", name, agent)
	}
	b, _ := os.ReadFile(filepath.Join(d.p.Scratch, "cli.log"))
	fmt.Printf("\n=== tail of the bosh CLI output\n%s\n", tail(string(b), 60))
	b, _ = os.ReadFile(filepath.Join(d.p.Scratch, "dockerd.log"))
	fmt.Printf("\n=== tail of the private dockerd's log\n%s\n", tail(string(b), 30))
}
