package lxcsuite

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

const (
	bootTimeout = 20 * time.Second
	// diskTimeout covers a restart (graceful stop, start) and the agent's
	// poll.
	diskTimeout = 30 * time.Second
)

var settingsPath = hypervisor.LXC.SettingsPath

// checkBoot judges the agent's first reports since index from: the
// settings it read from the warden file are, by hash, those CreateVM
// returned; every network's NIC was found by its MAC and carries its
// static IP.
func checkBoot(c *console, s vm.Spec, want agentsettings.Settings, from int) (int, error) {
	got, at, err := waitReport(c, s.CID, from, bootTimeout, "settings report", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventSettings || (r.Event == guestcheck.EventError && r.Device == settingsPath)
	})
	if err != nil {
		return 0, err
	}
	if got.Event == guestcheck.EventError {
		return 0, fmt.Errorf("VM %s: the agent could not read its settings: %s", s.CID, got.Message)
	}
	u, _ := url.Parse(want.Mbus)
	for _, f := range []struct{ what, got, want string }{
		{"agent_id", got.AgentID, want.AgentID},
		{"vm name", got.VMName, want.VM.Name},
		{"mbus (masked)", got.Mbus, u.Redacted()},
		{"networks", strings.Join(got.Networks, ","), strings.Join(slices.Sorted(maps.Keys(want.Networks)), ",")},
		{"settings file at", got.Device, settingsPath},
	} {
		if f.got != f.want {
			return 0, fmt.Errorf("VM %s: the agent read %s %q; want %q", s.CID, f.what, f.got, f.want)
		}
	}
	for _, nic := range s.NICs {
		r, _, err := waitReport(c, s.CID, at, 5*time.Second, "NIC report for network "+nic.BOSHNetwork, func(r guestcheck.Report) bool {
			return (r.Event == guestcheck.EventNIC || r.Event == guestcheck.EventError) && r.Network == nic.BOSHNetwork
		})
		if err != nil {
			return 0, err
		}
		sn := want.Networks[nic.BOSHNetwork]
		switch {
		case r.Event == guestcheck.EventError || r.Message != "":
			return 0, fmt.Errorf("VM %s: network %s: %s", s.CID, nic.BOSHNetwork, r.Message)
		case !strings.EqualFold(r.MAC, sn.MAC) || !strings.EqualFold(r.MAC, nic.MAC):
			return 0, fmt.Errorf("VM %s: network %s: the agent's NIC %s has MAC %s; settings %s, domain %s", s.CID, nic.BOSHNetwork, r.NIC, r.MAC, sn.MAC, nic.MAC)
		case r.IP != nic.IP:
			return 0, fmt.Errorf("VM %s: network %s: the agent sees IP %q on %s; want the static %s", s.CID, nic.BOSHNetwork, r.IP, r.NIC, nic.IP)
		}
	}
	body, _ := json.Marshal(want)
	if sum := fmt.Sprintf("%x", sha256.Sum256(body)); got.SettingsSHA256 != sum {
		return 0, fmt.Errorf("VM %s: the settings the agent read (sha256 %s) are not those CreateVM returned (sha256 %s)", s.CID, got.SettingsSHA256, sum)
	}
	return at, nil
}

// checkDisk waits, from report index from, for the agent to find disk
// diskCID at the path of hint, and returns its report.
func checkDisk(c *console, vmCID, diskCID string, hint disk.Hint, from int) (guestcheck.Report, error) {
	r, _, err := waitReport(c, vmCID, from, diskTimeout, "disk report", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventDisk || r.Event == guestcheck.EventError
	})
	switch {
	case err != nil:
		return r, err
	case r.Event == guestcheck.EventError || r.Message != "":
		return r, fmt.Errorf("VM %s: disk: %s", vmCID, r.Message)
	case r.DiskCID != diskCID || r.Device != hint.Path:
		return r, fmt.Errorf("VM %s: the agent found disk %q at %s; the hint says %q at %s", vmCID, r.DiskCID, r.Device, diskCID, hint.Path)
	}
	return r, nil
}

// nextBoot is the index of the first report of the agent's next boot
// after index from (a restart for a disk, a reboot).
func nextBoot(c *console, cid string, from int) (int, error) {
	_, at, err := waitReport(c, cid, from+1, diskTimeout, "a new boot's settings report", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventSettings
	})
	return at, err
}

// cgroupValue reads a value of the container's cgroup (v1) from the
// kernel, e.g. memory/memory.limit_in_bytes.
func cgroupValue(t *testing.T, controller, file, cid string) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", controller, "machine", "lxc-*-"+cid+".libvirt-lxc", file))
	if len(paths) != 1 {
		t.Fatalf("cgroup %s/%s of container %s: found %v", controller, file, cid, paths)
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (e *testEnv) createVM(s vm.Spec, gateways ...string) agentsettings.Settings {
	e.t.Helper()
	got, err := e.b.CreateVM(e.ctx, s, e.settingsFor(s, gateways...))
	if err != nil {
		e.t.Fatalf("create_vm: %v", err)
	}
	return got
}

// nicsAsCreated are the spec's NICs with the MACs the settings got.
func nicsAsCreated(s vm.Spec, settings agentsettings.Settings) vm.Spec {
	for i, nic := range s.NICs {
		s.NICs[i].MAC = settings.Networks[nic.BOSHNetwork].MAC
	}
	return s
}

// TestContainerLifecycle: a warden stemcell imported as a directory, a
// container whose init (the test agent) reads the full settings from the
// warden file and finds both NICs by MAC with their static IPs, CPU and
// memory limits the kernel enforces, a persistent disk attached with a
// hint the agent resolves, its data carried to another container, resize,
// snapshots, metadata, reboot, delete.
func TestContainerLifecycle(t *testing.T) {
	e := newTestEnv(t)
	sc := e.importRootfs(0)
	if _, err := os.Stat(filepath.Join(e.b.StemcellRoot(sc), "sbin/init")); err != nil {
		t.Fatalf("stemcell root not unpacked: %v", err)
	}
	net1, gw1 := e.network(11)
	net2, gw2 := e.network(12)
	s := spec(sc, [2]string{net1, "10.214.11.5"}, [2]string{net2, "10.214.12.5"})
	s.Props.CPUs = 2
	settings := e.createVM(s, gw1, gw2)
	s = nicsAsCreated(s, settings)
	c := e.watchConsole(s.CID)
	boot, err := checkBoot(c, s, settings, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := cgroupValue(t, "memory", "memory.limit_in_bytes", s.CID); got != strconv.Itoa(128<<20) {
		t.Errorf("memory limit %s; want 128 MiB", got)
	}
	if got := cgroupValue(t, "cpu", "cpu.cfs_quota_us", s.CID); got != "200000" {
		t.Errorf("CPU quota %s µs per 100 ms; want 200000 (2 CPUs)", got)
	}
	if ok, err := e.b.HasVM(e.ctx, s.CID); !ok || err != nil {
		t.Fatalf("has_vm = %v, %v", ok, err)
	}
	if def := domainXML(t, e, s.CID); def.Type != "lxc" || def.OS.Init != "/sbin/init" || len(def.Devices.Interfaces) != 2 {
		t.Errorf("live domain: type %q, init %q, %d NICs; want an lxc container running /sbin/init with 2 NICs", def.Type, def.OS.Init, len(def.Devices.Interfaces))
	}
	if err := e.b.SetVMMetadata(e.ctx, s.CID, vm.Metadata{"deployment": "d", "job": "j", "index": "0"}); err != nil {
		t.Fatalf("set_vm_metadata: %v", err)
	}
	dom, _ := e.conn.DomainLookupByName(s.CID)
	if title, err := e.conn.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataTitle), golibvirt.OptString{}, 0); err != nil || title != "d/j/0" {
		t.Errorf("title %q, %v; want d/j/0", title, err)
	}

	// A persistent disk: attach restarts the container, whose root keeps
	// what it wrote.
	diskCID := disk.NewCID()
	if err := e.b.CreateDisk(e.ctx, disk.Spec{CID: diskCID, SizeMiB: 64}); err != nil {
		t.Fatalf("create_disk: %v", err)
	}
	state := filepath.Join(e.b.ContainerDir(s.CID), "rootfs", "var/vcap/data/state")
	if err := os.WriteFile(state, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	hint, err := e.b.AttachDisk(e.ctx, s.CID, diskCID)
	if err != nil {
		t.Fatalf("attach_disk: %v", err)
	}
	if hint.Path != "/warden-cpi-dev/"+diskCID {
		t.Errorf("hint %+v; want the path /warden-cpi-dev/%s", hint, diskCID)
	}
	if boot, err = nextBoot(c, s.CID, boot); err != nil {
		t.Fatal(err)
	}
	r, err := checkDisk(c, s.CID, diskCID, hint, boot)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created {
		t.Errorf("the agent found a marker on a new disk: %s", r.Marker)
	}
	if b, err := os.ReadFile(state); err != nil || string(b) != "kept" {
		t.Errorf("the container's state after the restart: %q, %v", b, err)
	}
	if got, err := e.b.AttachedDisks(e.ctx, s.CID); err != nil || !slices.Equal(got, []string{diskCID}) {
		t.Errorf("attached disks %v, %v", got, err)
	}
	if _, err := e.b.AttachDisk(e.ctx, s.CID, diskCID); err != nil {
		t.Errorf("attaching again: %v", err)
	}
	err = e.b.SnapshotDisk(e.ctx, diskCID, "snap-"+randomHex(t, 8), nil)
	if !errors.Is(err, cpierr.ErrNotSupported) || !strings.Contains(err.Error(), "lxc driver") {
		t.Errorf("snapshot of a mounted disk = %v; want NotSupported naming the lxc driver", err)
	}
	if err := e.b.DeleteDisk(e.ctx, diskCID); !errors.Is(err, cpierr.ErrInUse) {
		t.Errorf("delete_disk of an attached disk = %v; want ErrInUse", err)
	}

	if err := e.b.DetachDisk(e.ctx, s.CID, diskCID); err != nil {
		t.Fatalf("detach_disk: %v", err)
	}
	if err := e.b.DetachDisk(e.ctx, s.CID, diskCID); !errors.Is(err, cpierr.ErrNotAttached) {
		t.Errorf("detaching again = %v; want ErrNotAttached", err)
	}
	if err := e.b.ResizeDisk(e.ctx, diskCID, 128); err != nil {
		t.Fatalf("resize_disk: %v", err)
	}
	snap := "snap-" + randomHex(t, 8)
	if err := e.b.SnapshotDisk(e.ctx, diskCID, snap, nil); err != nil {
		t.Errorf("snapshot of a detached disk: %v", err)
	} else if err := e.b.DeleteSnapshot(e.ctx, snap); err != nil {
		t.Errorf("delete_snapshot: %v", err)
	}

	// The disk moves to another container with its data; the first one
	// goes and the disk stays.
	s2 := spec(sc, [2]string{net1, "10.214.11.6"})
	settings2 := e.createVM(s2, gw1)
	s2 = nicsAsCreated(s2, settings2)
	c2 := e.watchConsole(s2.CID)
	boot2, err := checkBoot(c2, s2, settings2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteVM(e.ctx, s.CID); err != nil {
		t.Fatalf("delete_vm: %v", err)
	}
	if ok, _ := e.b.HasDisk(e.ctx, diskCID); !ok {
		t.Fatal("the disk went with the VM")
	}
	if _, err := os.Stat(e.b.ContainerDir(s.CID)); !os.IsNotExist(err) {
		t.Errorf("the deleted VM's directory is left: %v", err)
	}
	hint2, err := e.b.AttachDisk(e.ctx, s2.CID, diskCID)
	if err != nil {
		t.Fatalf("attach_disk to the second VM: %v", err)
	}
	if boot2, err = nextBoot(c2, s2.CID, boot2); err != nil {
		t.Fatal(err)
	}
	r, err = checkDisk(c2, s2.CID, diskCID, hint2, boot2)
	if err != nil {
		t.Fatal(err)
	}
	var marker struct {
		WrittenBy string `json:"written_by"`
	}
	json.Unmarshal(r.Marker, &marker)
	if r.Created || marker.WrittenBy != s.AgentID {
		t.Errorf("the second VM's agent found marker %s (created %v); want the first agent's (%s)", r.Marker, r.Created, s.AgentID)
	}
	if blocks := ext4Size(t, e, diskCID); blocks != 128<<20 {
		t.Errorf("the disk's filesystem is %d bytes; want 128 MiB after resize", blocks)
	}

	if err := e.b.RebootVM(e.ctx, s2.CID); err != nil {
		t.Fatalf("reboot_vm: %v", err)
	}
	if _, err := nextBoot(c2, s2.CID, boot2); err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteStemcell(e.ctx, sc); !errors.Is(err, cpierr.ErrInUse) {
		t.Errorf("delete_stemcell in use = %v; want ErrInUse", err)
	}
	if err := e.b.DeleteVM(e.ctx, s2.CID); err != nil {
		t.Fatalf("delete_vm: %v", err)
	}
	if ok, err := e.b.HasVM(e.ctx, s2.CID); ok || err != nil {
		t.Errorf("has_vm after delete = %v, %v", ok, err)
	}
	if err := e.b.DeleteDisk(e.ctx, diskCID); err != nil {
		t.Errorf("delete_disk: %v", err)
	}
	if err := e.b.DeleteStemcell(e.ctx, sc); err != nil {
		t.Errorf("delete_stemcell: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(e.cfg.StoreDir, "lxc", "vms")); len(left) != 0 {
		t.Errorf("left in the VM directory: %v", left)
	}
}

// ext4Size is the byte size of the ext4 filesystem on the disk's volume.
func ext4Size(t *testing.T, e *testEnv, diskCID string) int {
	t.Helper()
	out, err := execOut("dumpe2fs", "-h", filepath.Join(e.cfg.PoolPath, diskCID))
	if err != nil {
		t.Fatalf("dumpe2fs: %v", err)
	}
	var count, size int
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch strings.TrimSpace(k) {
		case "Block count":
			count, _ = strconv.Atoi(strings.TrimSpace(v))
		case "Block size":
			size, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return count * size
}

// TestFailedCreateLeavesNothing: a container whose init cannot start (a
// stemcell without /sbin/init) fails create_vm after its root was
// mounted and its domain defined; nothing of it is left.
func TestFailedCreateLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	sc := e.importRootfs(0)
	if err := os.Remove(filepath.Join(e.b.StemcellRoot(sc), "sbin/init")); err != nil {
		t.Fatal(err)
	}
	net1, gw1 := e.network(13)
	// What a create_vm killed before its domain leaves: the next
	// create_vm removes it once it is old, never a young one (a create in
	// progress).
	old, young := e.b.ContainerDir(vm.NewCID()), e.b.ContainerDir(vm.NewCID())
	for _, dir := range []string{old, young} {
		if err := os.MkdirAll(filepath.Join(dir, "upper"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(old, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	s := spec(sc, [2]string{net1, "10.214.13.5"})
	_, err := e.b.CreateVM(e.ctx, s, e.settingsFor(s, gw1))
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("an hour-old container directory without a domain is left: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a young container directory without a domain (a create in progress) was removed: %v", err)
	}
	os.RemoveAll(young)
	if err == nil {
		t.Fatal("create_vm of a container without init succeeded")
	}
	t.Logf("create_vm failed as it should: %v", err)
	if _, err := e.conn.DomainLookupByName(s.CID); err == nil {
		t.Error("the domain is left")
	}
	if _, err := os.Stat(e.b.ContainerDir(s.CID)); !os.IsNotExist(err) {
		t.Errorf("the container directory is left: %v", err)
	}
	missing := spec(sc, [2]string{net1, "10.214.13.6"})
	missing.Disks = []vm.AttachedDisk{{DiskCID: disk.NewCID()}}
	if _, err := e.b.CreateVM(e.ctx, missing, e.settingsFor(missing, gw1)); !cpierr.IsNotFound(err) {
		t.Errorf("create_vm with a missing disk = %v; want NotFound", err)
	}
	if _, err := os.Stat(e.b.ContainerDir(missing.CID)); !os.IsNotExist(err) {
		t.Errorf("the container directory is left: %v", err)
	}
}

// The domain libvirt holds is a container: checked from its live XML.
func domainXML(t *testing.T, e *testEnv, cid string) libvirtxml.Domain {
	t.Helper()
	dom, err := e.conn.DomainLookupByName(cid)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := e.conn.DomainGetXMLDesc(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	return def
}

// TestDiskInSettingsAtCreation: a disk attached at create_vm (stemcell
// API 1: its hint in the settings) is mounted before init runs, and the
// agent resolves it by the settings' hint.
func TestDiskInSettingsAtCreation(t *testing.T) {
	e := newTestEnv(t)
	sc := e.importRootfs(0)
	net1, gw1 := e.network(14)
	diskCID := disk.NewCID()
	if err := e.b.CreateDisk(e.ctx, disk.Spec{CID: diskCID, SizeMiB: 32}); err != nil {
		t.Fatal(err)
	}
	s := spec(sc, [2]string{net1, "10.214.14.5"})
	s.Disks = []vm.AttachedDisk{{DiskCID: diskCID}}
	s.PersistentDisksInSettings = true
	settings := e.createVM(s, gw1)
	s = nicsAsCreated(s, settings)
	hint := settings.Disks.Persistent[diskCID]
	if hint.Path != "/warden-cpi-dev/"+diskCID {
		t.Fatalf("settings hint %+v; want the path /warden-cpi-dev/%s", hint, diskCID)
	}
	c := e.watchConsole(s.CID)
	if _, err := checkBoot(c, s, settings, 0); err != nil {
		t.Fatal(err)
	}
	r, _, err := waitReport(c, s.CID, 0, diskTimeout, "persistent disk report", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventPersistent || (r.Event == guestcheck.EventError && r.DiskCID == diskCID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Event != guestcheck.EventPersistent || r.Device != hint.Path {
		t.Errorf("the agent resolved the settings' disk as %+v; want it at %s", r, hint.Path)
	}
	if err := e.b.DeleteVM(e.ctx, s.CID); err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteDisk(e.ctx, diskCID); err != nil {
		t.Errorf("delete_disk after its VM went: %v", err)
	}
}

// TestParallelContainers: create_vm and delete_vm in parallel, each on a
// connection of its own as separate CPI processes are, on one stemcell;
// every agent reads its own settings, and nothing is left.
func TestParallelContainers(t *testing.T) {
	e := newTestEnv(t)
	sc := e.importRootfs(0)
	net1, gw1 := e.network(15)
	const n = 4
	specs := make([]vm.Spec, n)
	settings := make([]agentsettings.Settings, n)
	errs := make(chan error, n)
	for i := range n {
		specs[i] = spec(sc, [2]string{net1, fmt.Sprintf("10.214.15.%d", 10+i)})
		b := e.open()
		go func() {
			var err error
			settings[i], err = b.CreateVM(e.ctx, specs[i], e.settingsFor(specs[i], gw1))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("parallel create_vm: %v", err)
		}
	}
	for i := range n {
		s := nicsAsCreated(specs[i], settings[i])
		if _, err := checkBoot(e.watchConsole(s.CID), s, settings[i], 0); err != nil {
			t.Error(err)
		}
	}
	for i := range n {
		b := e.open()
		go func() { errs <- b.DeleteVM(e.ctx, specs[i].CID) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("parallel delete_vm: %v", err)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(e.cfg.StoreDir, "lxc", "vms")); len(left) != 0 {
		t.Errorf("left in the VM directory: %v", left)
	}
}
