package docker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

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

// checkBoot: the agent read settings naming its agent ID, and found the
// NIC of network "manual" by the MAC Docker gave it, with the static IP.
func (e *env) checkBoot(vm, agentID, ip string) {
	e.t.Helper()
	s := e.waitReport(vm, "settings report", func(r guestcheck.Report) bool { return r.Event == guestcheck.EventSettings })
	if s.AgentID != agentID || s.VMName != vm || s.Via != "warden-file" {
		e.t.Fatalf("VM %s: the agent read settings of agent %q, vm %q via %q; want %s, %s via warden-file", vm, s.AgentID, s.VMName, s.Via, agentID, vm)
	}
	nic := e.waitReport(vm, "NIC report of network manual", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventNIC && r.Network == "manual"
	})
	mac := docker(e.t, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.MacAddress}} {{.IPAddress}}{{end}}", vm)
	if nic.Message != "" || nic.IP != ip || mac != nic.MAC+" "+ip+"\n" {
		e.t.Fatalf("VM %s: the agent found network manual on MAC %s with IP %s (%s); Docker says %q, the static IP is %s", vm, nic.MAC, nic.IP, nic.Message, mac, ip)
	}
}

// checkDisk: the agent found the disk where its hint leads; it returns
// the agent's report.
func (e *env) checkDisk(vm, diskCID string, hint guestcheck.Hint) guestcheck.Report {
	e.t.Helper()
	r := e.waitReport(vm, "disk report of "+diskCID, func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventDisk && r.DiskCID == diskCID
	})
	found, err := guestcheck.MapPath(hint.Path, func(p string) bool { return p == r.Device })
	if err != nil || found != r.Device || r.Message != "" {
		e.t.Fatalf("VM %s: the agent found disk %s at %s (%s); hint %+v does not lead there: %v", vm, diskCID, r.Device, r.Message, hint, err)
	}
	return r
}

// TestLifecycle is a director's sequence, one CPI process per call, with
// the guest's own view checked at each step and nothing left at the end.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	_, agent := binaries(t)

	var info struct {
		StemcellFormats []string `json:"stemcell_formats"`
		APIVersion      int      `json:"api_version"`
	}
	json.Unmarshal(e.call("info"), &info)
	if !slices.Equal(info.StemcellFormats, []string{"warden-tar", "general-tar"}) || info.APIVersion != 2 {
		t.Fatalf("info: %+v", info)
	}

	sc := e.createStemcell(stemcellImage(t, agent))
	net1, ip1, _ := e.manualNetwork(10)
	vm1 := e.createVM("agent-1", sc, map[string]any{"manual": net1})
	e.checkBoot(vm1, "agent-1", ip1)
	e.call("set_vm_metadata", vm1, map[string]any{"director": "test", "index": "0"})
	if _, err := os.Stat(filepath.Join(e.storeDir, "docker", "vms", vm1, "metadata.json")); err != nil {
		t.Errorf("set_vm_metadata stored nothing: %v", err)
	}

	d := e.createDisk(32, vm1)
	var hint guestcheck.Hint
	if err := json.Unmarshal(e.call("attach_disk", vm1, d), &hint); err != nil || hint.Path != "/warden-cpi-dev/"+d {
		t.Fatalf("attach_disk hint %+v (%v); want path /warden-cpi-dev/%s", hint, err, d)
	}
	first := e.checkDisk(vm1, d, hint)
	if !first.Created || writtenBy(first) != "" {
		t.Errorf("a new disk should be found empty and marked: %+v", first)
	}
	e.call("detach_disk", vm1, d)
	e.waitReport(vm1, "disk_gone of "+d, func(r guestcheck.Report) bool { return r.Event == guestcheck.EventDiskGone && r.DiskCID == d })

	net2, ip2, _ := e.manualNetwork(11)
	vm2 := e.createVM("agent-2", sc, map[string]any{"manual": net2})
	e.checkBoot(vm2, "agent-2", ip2)
	var hint2 guestcheck.Hint
	json.Unmarshal(e.call("attach_disk", vm2, d), &hint2)
	second := e.checkDisk(vm2, d, hint2)
	if second.Created || writtenBy(second) != "agent-1" {
		t.Errorf("the second VM's agent should read agent-1's marker on the disk: %+v", second)
	}

	snap := e.callString("snapshot_disk", d, map[string]any{"deployment": "test"})
	e.call("delete_snapshot", snap)
	e.call("detach_disk", vm2, d)
	e.call("resize_disk", d, 64)

	settingsBefore := e.countReports(vm2, func(r guestcheck.Report) bool { return r.Event == guestcheck.EventSettings })
	e.call("reboot_vm", vm2)
	e.waitReport(vm2, "settings report after reboot", func(guestcheck.Report) bool {
		return e.countReports(vm2, func(r guestcheck.Report) bool { return r.Event == guestcheck.EventSettings }) > settingsBefore
	})
	var has bool
	json.Unmarshal(e.call("has_vm", vm2), &has)
	if !has {
		t.Fatal("has_vm after reboot_vm: false")
	}

	// The leak count sees what is there (so its 0 below means something).
	seen := e.leftovers()
	for _, want := range []string{"container " + vm1, "volume " + vm2 + "-ephemeral", "image " + sc, "network " + e.networks[0], "file docker/disks/" + d + ".img"} {
		if !slices.Contains(seen, want) {
			t.Errorf("the leak count misses %s: %v", want, seen)
		}
	}
	for _, vm := range []string{vm1, vm2} {
		e.call("delete_vm", vm)
	}
	e.call("delete_disk", d)
	e.call("delete_stemcell", sc)
	e.deleteNetworks()
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("leaks after the lifecycle: %d", len(e.leftovers()))
}

// TestParallel: 8 CPI processes at once, each making a VM and a disk,
// attaching, detaching and deleting; nothing is left.
func TestParallel(t *testing.T) {
	e := newEnv(t)
	_, agent := binaries(t)
	sc := e.createStemcell(stemcellImage(t, agent))
	const n = 8
	nets := make([]map[string]any, n)
	for i := range nets {
		nets[i], _, _ = e.manualNetwork(20 + i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.parallelOne(sc, i, nets[i])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	e.call("delete_stemcell", sc)
	e.deleteNetworks()
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	t.Logf("leaks after %d parallel lifecycles: %d", n, len(e.leftovers()))
}

// parallelOne runs one VM's calls, each a CPI process of its own.
func (e *env) parallelOne(sc string, i int, net map[string]any) error {
	c := e.client
	vm, run, err := c.CreateVM(fmt.Sprintf("agent-p%d", i), sc, map[string]any{"cpus": 1, "memory": 64}, map[string]any{"manual": net}, map[string]any{}, nil)
	if err != nil {
		return fmt.Errorf("create_vm %d: %v\n%s", i, err, run.Stderr)
	}
	e.remember(&e.vms, vm)
	d, run, err := c.CallString("create_disk", 16, map[string]any{}, vm)
	if err != nil {
		return fmt.Errorf("create_disk %d: %v\n%s", i, err, run.Stderr)
	}
	e.remember(&e.disks, d)
	for _, step := range [][]any{{"attach_disk", vm, d}, {"detach_disk", vm, d}, {"delete_vm", vm}, {"delete_disk", d}} {
		if _, run, err := c.Call(step[0].(string), step[1:]...); err != nil {
			return fmt.Errorf("%v %d: %v\n%s", step[0], i, err, run.Stderr)
		}
	}
	return nil
}
