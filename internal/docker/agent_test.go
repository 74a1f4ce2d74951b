package docker

// Guest truth through the project's test agent in warden form: the agent
// (cmd/test-agent, built static at test time) is the container's init and
// reports on its stdout what it found (settings, NICs by MAC, disks by
// their warden hint); the checks below judge those reports, as
// test/lifecycle's do for QEMU guests' serial consoles.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

const agentBootTimeout = 30 * time.Second

// buildTestAgent builds cmd/test-agent static (no libc in the rootfs).
func buildTestAgent(t *testing.T) []byte {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := filepath.Join(t.TempDir(), "test-agent")
	cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, "../../cmd/test-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test agent: %v: %s", err, msg)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// agentStemcell imports a rootfs whose /sbin/init is the test agent.
func (e *testEnv) agentStemcell() string {
	e.t.Helper()
	cid := stemcell.NewCID()
	if err := e.r.importRootfs(e.ctx, cid, bytes.NewReader(rootfsTgzWith(e.t, buildTestAgent(e.t)))); err != nil {
		e.t.Fatal(err)
	}
	return cid
}

// agentSpec is a VM of the agent stemcell: dynamic network "dyn" on the
// default Docker network and, when subnet is given, manual network
// "static" with ip on a network of the test's own.
func (e *testEnv) agentSpec(sc, netName string, subnet *Subnet, ip string) containerSpec {
	nics := []nicSpec{{BOSHNetwork: "dyn"}}
	if subnet != nil {
		nics = append(nics, nicSpec{BOSHNetwork: "static", DockerNetwork: netName, IP: ip, Create: subnet})
	}
	return containerSpec{CID: vm.NewCID(), StemcellCID: sc, CPUs: 1, MemoryMiB: 64, NICs: nics, Command: []string{"/sbin/init"}}
}

// agentSettings are settingsFor with a chosen MAC on the dynamic NIC and
// the static network's netmask and gateway.
func agentSettings(spec containerSpec, subnet *Subnet, mac string) agentsettings.Settings {
	s := settingsFor(spec.CID, spec.NICs...)
	s.Networks["dyn"] = withMAC(s.Networks["dyn"], mac)
	if n, ok := s.Networks["static"]; ok {
		n.Netmask, n.Gateway = "255.255.255.0", subnet.Gateway
		s.Networks["static"] = n
	}
	return s
}

// agentLog is the container's log: the agent's stdout.
func (e *testEnv) agentLog(cid string) string {
	e.t.Helper()
	rc, err := e.r.api.ContainerLogs(e.ctx, e.r.name(cid), container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		e.t.Fatalf("logs of VM %s: %v", cid, err)
	}
	defer rc.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, rc); err != nil {
		e.t.Fatalf("logs of VM %s: %v", cid, err)
	}
	return out.String() + errOut.String()
}

func (e *testEnv) agentReports(cid string) []guestcheck.Report {
	return guestcheck.ParseReports(e.agentLog(cid))
}

// waitReport waits for a report from index from on that match accepts.
func (e *testEnv) waitReport(cid string, from int, timeout time.Duration, what string, match func(guestcheck.Report) bool) (guestcheck.Report, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		reports := e.agentReports(cid)
		for i := from; i < len(reports); i++ {
			if match(reports[i]) {
				return reports[i], i, nil
			}
		}
		if time.Now().After(deadline) {
			return guestcheck.Report{}, len(reports), fmt.Errorf("VM %s: no %s within %s; the agent reported:\n%s", cid, what, timeout, devenv.DescribeReports(reports))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func rawReport(r guestcheck.Report) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// checkAgentBoot: the agent read its settings from the warden file
// (agent_id, vm name, mbus, networks as CreateVM returned them), found
// every network's NIC by the settings' MAC, the NIC's MAC and IP are the
// ones Docker gave the container, the manual network's static IP is on its
// NIC, and the document it read is, by its hash, the one CreateVM returned.
func checkAgentBoot(e *testEnv, spec containerSpec, want agentsettings.Settings) error {
	cid := spec.CID
	got, _, err := e.waitReport(cid, 0, agentBootTimeout, "settings report", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventSettings || (r.Event == guestcheck.EventError && r.Device == SettingsPath)
	})
	if err != nil {
		return err
	}
	if got.Event == guestcheck.EventError {
		return fmt.Errorf("VM %s: the agent could not read its settings: %s", cid, rawReport(got))
	}
	u, _ := url.Parse(want.Mbus)
	for _, f := range []struct{ what, got, want string }{
		{"agent_id", got.AgentID, want.AgentID},
		{"vm name", got.VMName, want.VM.Name},
		{"mbus (masked)", got.Mbus, u.Redacted()},
		{"networks", strings.Join(got.Networks, ","), strings.Join(slices.Sorted(maps.Keys(want.Networks)), ",")},
		{"settings file at", got.Device, SettingsPath},
	} {
		if f.got != f.want {
			return fmt.Errorf("VM %s: the agent read %s %q; want %q", cid, f.what, f.got, f.want)
		}
	}
	ins, err := e.r.inspectVM(e.ctx, cid)
	if err != nil {
		return err
	}
	for _, nic := range spec.NICs {
		sn := want.Networks[nic.BOSHNetwork]
		r, _, err := e.waitReport(cid, 0, 10*time.Second, "NIC report for network "+nic.BOSHNetwork, func(r guestcheck.Report) bool {
			return (r.Event == guestcheck.EventNIC || r.Event == guestcheck.EventError) && r.Network == nic.BOSHNetwork
		})
		if err != nil {
			return err
		}
		if r.Event == guestcheck.EventError {
			return fmt.Errorf("VM %s: network %s: %s", cid, nic.BOSHNetwork, r.Message)
		}
		dockerNet := nic.DockerNetwork
		if dockerNet == "" {
			dockerNet = e.cfg.Network
		}
		ep := ins.NetworkSettings.Networks[dockerNet]
		if ep == nil {
			return fmt.Errorf("VM %s is not on Docker network %s", cid, dockerNet)
		}
		if !strings.EqualFold(r.MAC, sn.MAC) || !strings.EqualFold(r.MAC, ep.MacAddress) {
			return fmt.Errorf("VM %s: network %s: the agent's NIC %s has MAC %s; settings %s, Docker %s", cid, nic.BOSHNetwork, r.NIC, r.MAC, sn.MAC, ep.MacAddress)
		}
		if r.IP != ep.IPAddress || (nic.IP != "" && r.IP != nic.IP) {
			return fmt.Errorf("VM %s: network %s: the agent sees IP %q on %s; Docker gave %q, the static IP is %q", cid, nic.BOSHNetwork, r.IP, r.NIC, ep.IPAddress, nic.IP)
		}
		if r.Message != "" {
			return fmt.Errorf("VM %s: network %s: %s", cid, nic.BOSHNetwork, r.Message)
		}
	}
	// Last, so that the NIC checks above are proven on their own: the
	// whole document, byte for byte, is the one the CPI returned.
	body, _ := json.Marshal(want)
	if sum := fmt.Sprintf("%x", sha256.Sum256(body)); got.SettingsSHA256 != sum {
		return fmt.Errorf("VM %s: the settings the agent read (sha256 %s) are not those CreateVM returned (sha256 %s)", cid, got.SettingsSHA256, sum)
	}
	return nil
}

// checkAgentDisk: the agent found the disk at its hint's path by the
// agent's path rule, from report index from on; it returns the report.
func checkAgentDisk(e *testEnv, cid, diskCID string, h disk.Hint, from int) (guestcheck.Report, error) {
	r, _, err := e.waitReport(cid, from, 20*time.Second, "disk report for "+diskCID, func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventDisk && r.DiskCID == diskCID
	})
	if err != nil {
		return r, err
	}
	found, err := guestcheck.MapPath(h.Path, func(p string) bool { return p == r.Device })
	if err != nil || found != r.Device {
		return r, fmt.Errorf("VM %s: the agent found disk %s at %s; its hint %+v does not lead there: %v", cid, diskCID, r.Device, h, err)
	}
	if r.Message != "" {
		return r, fmt.Errorf("VM %s: disk %s: %s", cid, diskCID, r.Message)
	}
	return r, nil
}

// writtenBy is the agent the disk's marker names, "" without one.
func writtenBy(r guestcheck.Report) string {
	var m struct {
		DiskCID   string `json:"disk_cid"`
		WrittenBy string `json:"written_by"`
	}
	if json.Unmarshal(r.Marker, &m) != nil || m.DiskCID != r.DiskCID {
		return ""
	}
	return m.WrittenBy
}

// The agent's view of a VM with a dynamic and a manual network and of a
// persistent disk that moves to a second VM: full settings, NICs by MAC
// with Docker's addresses and the static IP, the disk through its hint,
// its data (the first agent's marker) surviving detach and attach.
func TestAgentGuestTruth(t *testing.T) {
	e := newTestEnv(t)
	sc := e.agentStemcell()
	netName, subnet := e.testNetwork()
	spec1 := e.agentSpec(sc, netName, subnet, hostIn(subnet, 10))
	vm1, err := e.r.createContainerVM(e.ctx, spec1, agentSettings(spec1, subnet, "02:b0:5c:00:00:01"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAgentBoot(e, spec1, vm1); err != nil {
		t.Fatal(err)
	}
	if log := e.agentLog(spec1.CID); strings.Contains(log, secretPassword) {
		t.Error("the mbus password reached the container's log")
	}

	d := disk.NewCID()
	if err := e.r.createDisk(e.ctx, d, 16); err != nil {
		t.Fatal(err)
	}
	hint, err := e.r.AttachDisk(e.ctx, spec1.CID, d)
	if err != nil {
		t.Fatal(err)
	}
	first, err := checkAgentDisk(e, spec1.CID, d, hint, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || writtenBy(first) != "" {
		t.Errorf("a new disk should be found empty and marked: %s", rawReport(first))
	}
	if err := e.r.DetachDisk(e.ctx, spec1.CID, d); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.waitReport(spec1.CID, 0, 10*time.Second, "disk_gone for "+d, func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventDiskGone && r.DiskCID == d
	}); err != nil {
		t.Error(err)
	}

	spec2 := e.agentSpec(sc, "", nil, "")
	vm2, err := e.r.createContainerVM(e.ctx, spec2, agentSettings(spec2, nil, "02:b0:5c:00:00:02"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAgentBoot(e, spec2, vm2); err != nil {
		t.Fatal(err)
	}
	hint2, err := e.r.AttachDisk(e.ctx, spec2.CID, d)
	if err != nil {
		t.Fatal(err)
	}
	second, err := checkAgentDisk(e, spec2.CID, d, hint2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || writtenBy(second) != vm1.AgentID {
		t.Errorf("the second VM's agent should read the first agent's (%s) marker: %s", vm1.AgentID, rawReport(second))
	}
	t.Logf("disk %s: marked by %s in %s, read back in %s", d, writtenBy(second), spec1.CID, spec2.CID)

	if err := e.r.DetachDisk(e.ctx, spec2.CID, d); err != nil {
		t.Fatal(err)
	}
	for _, cid := range []string{spec1.CID, spec2.CID} {
		if err := e.r.DeleteVM(e.ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.r.DeleteDisk(e.ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteNetwork(e.ctx, netName); err != nil {
		t.Error(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// The checks can fail: with settings the CPI got wrong in the container
// (none at all, another MAC, another static IP) the agent says so and
// checkAgentBoot fails for that reason, as test/lifecycle's fault
// injection requires of the QEMU checks.
func TestAgentChecksCatchFaults(t *testing.T) {
	e := newTestEnv(t)
	sc := e.agentStemcell()
	netName, subnet := e.testNetwork()
	cases := []struct {
		fault  string
		tamper func(agentsettings.Settings) *agentsettings.Settings
		// what the check's error must say: the agent's own finding
		want string
	}{
		{"no settings file", func(agentsettings.Settings) *agentsettings.Settings { return nil },
			"warden settings file: open " + SettingsPath + ": no such file"},
		{"wrong MAC in the settings", func(s agentsettings.Settings) *agentsettings.Settings {
			s.Networks = maps.Clone(s.Networks)
			s.Networks["dyn"] = withMAC(s.Networks["dyn"], "02:b0:5c:ff:ff:ff")
			return &s
		}, "no NIC has MAC 02:b0:5c:ff:ff:ff"},
		{"wrong static IP in the settings", func(s agentsettings.Settings) *agentsettings.Settings {
			s.Networks = maps.Clone(s.Networks)
			n := s.Networks["static"]
			n.IP = hostIn(subnet, 99)
			s.Networks["static"] = n
			return &s
		}, "static IP " + hostIn(subnet, 99) + " of network static is not on NIC"},
	}
	for i, tc := range cases {
		t.Run(strings.ReplaceAll(tc.fault, " ", "-"), func(t *testing.T) {
			e.r.tamperSettings = tc.tamper
			defer func() { e.r.tamperSettings = nil }()
			spec := e.agentSpec(sc, netName, subnet, hostIn(subnet, byte(20+i)))
			got, err := e.r.createContainerVM(e.ctx, spec, agentSettings(spec, subnet, fmt.Sprintf("02:b0:5c:00:01:%02x", i)))
			if err != nil {
				t.Fatal(err)
			}
			err = checkAgentBoot(e, spec, got)
			if delErr := e.r.DeleteVM(e.ctx, spec.CID); delErr != nil {
				t.Error(delErr)
			}
			if err == nil {
				t.Fatalf("the checks did not notice fault %q", tc.fault)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("fault %q: the check failed, but not for the agent's finding %q: %v", tc.fault, tc.want, err)
			}
			t.Logf("fault %q caught: %s", tc.fault, strings.SplitN(err.Error(), "\n", 2)[0])
		})
	}
	if err := e.r.DeleteNetwork(e.ctx, netName); err != nil {
		t.Error(err)
	}
}
