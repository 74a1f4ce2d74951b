package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// The stemcell is an image of ours; it cannot go while a VM runs it, and
// goes once none does.
func TestStemcellLifecycle(t *testing.T) {
	e := newTestEnv(t)
	sc := e.stemcell()
	img, err := e.r.stemcellImage(e.ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Labels[LabelCID] != sc || !ours(img.Config.Labels) {
		t.Fatalf("image labels %v do not mark stemcell %s as ours", img.Config.Labels, sc)
	}
	spec := e.vmSpec()
	e.createVM(e.r, spec)
	if err := e.r.DeleteStemcell(e.ctx, sc); !errors.Is(err, cpierr.ErrInUse) {
		t.Fatalf("delete_stemcell while a VM uses it: want ErrInUse, got %v", err)
	}
	if err := e.r.DeleteVM(e.ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteStemcell(e.ctx, sc); err != nil {
		t.Fatal(err)
	}
	for _, cid := range []string{sc, stemcell.NewCID()} {
		if err := e.r.DeleteStemcell(e.ctx, cid); !errors.Is(err, cpierr.ErrNotFound) || !strings.Contains(err.Error(), cid) {
			t.Errorf("delete_stemcell of absent %s: want ErrNotFound naming it, got %v", cid, err)
		}
	}
	if ok, err := e.r.HasStemcell(e.ctx, sc); ok || err != nil {
		t.Errorf("has stemcell after delete: %v %v", ok, err)
	}
}

// A stemcell whose /sbin/init is systemd is labelled so at create_stemcell,
// and its VMs get a container made for systemd, unprivileged: the agent's
// capabilities, tmpfs /run and /run/lock, the cgroup hierarchy read-only,
// container=docker, SIGRTMIN+3; container.init in cloud_properties
// overrides the label both ways, container.privileged is asked for only
// explicitly. Checked from inside the container (PID 1's capabilities and
// environment, the mounts) as well as through inspect.
func TestSystemdStemcell(t *testing.T) {
	e := newTestEnv(t)
	systemdSC, plainSC := stemcell.NewCID(), e.stemcell()
	if err := e.r.importRootfs(e.ctx, systemdSC, bytes.NewReader(buildRootfsTgz(t, []byte(initScript), true))); err != nil {
		t.Fatal(err)
	}
	for sc, want := range map[string]string{systemdSC: vm.InitSystemd, plainSC: vm.InitPlain} {
		img, err := e.r.stemcellImage(e.ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Config.Labels[LabelInit]; got != want || img.Config.Labels[LabelCID] != sc {
			t.Errorf("stemcell %s: labels %v, want %s=%s", sc, img.Config.Labels, LabelInit, want)
		}
	}
	cases := []struct {
		name, stemcell, init string
		wantSystemd          bool
	}{
		{"systemd stemcell", systemdSC, "", true},
		{"systemd stemcell, init plain", systemdSC, vm.InitPlain, false},
		{"plain stemcell, init systemd", plainSC, vm.InitSystemd, true},
		{"plain stemcell", plainSC, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := e.vmSpec()
			spec.StemcellCID, spec.Init = c.stemcell, c.init
			e.createVM(e.r, spec)
			defer e.r.DeleteVM(e.ctx, spec.CID)
			ct, err := e.r.inspectVM(e.ctx, spec.CID)
			if err != nil {
				t.Fatal(err)
			}
			if ct.HostConfig.Privileged {
				t.Error("container is privileged without container.privileged")
			}
			capEff := strings.Fields(e.mustExec(spec.CID, "grep", "CapEff", "/proc/1/status"))
			eff, err := strconv.ParseUint(capEff[len(capEff)-1], 16, 64)
			if err != nil {
				t.Fatalf("PID 1's CapEff %v: %v", capEff, err)
			}
			const capNetAdmin, capSysAdmin = 12, 21
			hasCaps := eff&(1<<capNetAdmin) != 0 && eff&(1<<capSysAdmin) != 0
			env := e.mustExec(spec.CID, "cat", "/proc/1/environ")
			mounts := e.mustExec(spec.CID, "cat", "/proc/mounts")
			got := map[string]bool{
				"NET_ADMIN+SYS_ADMIN in PID 1's CapEff": hasCaps,
				"container=docker in PID 1's env":       strings.Contains(env, "container=docker"),
				"tmpfs /run":                            mountLine(mounts, "/run", "tmpfs", ""),
				"tmpfs /run/lock":                       mountLine(mounts, "/run/lock", "tmpfs", ""),
				"/sys/fs/cgroup read-only":              ct.HostConfig.Mounts != nil && hasMount(ct.HostConfig.Mounts, "/sys/fs/cgroup", true) && mountLine(mounts, "/sys/fs/cgroup", "", "ro"),
				"stop signal SIGRTMIN+3":                ct.Config.StopSignal == "SIGRTMIN+3",
			}
			for what, ok := range got {
				if ok != c.wantSystemd {
					t.Errorf("%s: %t, want %t", what, ok, c.wantSystemd)
				}
			}
		})
	}
	if err := e.r.DeleteStemcell(e.ctx, systemdSC); err != nil {
		t.Fatal(err)
	}
}

// A privileged container is made only on request; this host's dockerd may
// be unable to start one (its bounding set), and the error must say so.
func TestPrivilegedOnRequest(t *testing.T) {
	e := newTestEnv(t)
	spec := e.vmSpec()
	spec.Privileged = true
	_, err := e.r.createContainerVM(e.ctx, spec, settingsFor(spec.CID, spec.NICs...))
	if err != nil {
		if !strings.Contains(err.Error(), "privileged=true") {
			t.Fatalf("a privileged container failed to start without saying it was privileged: %v", err)
		}
		t.Logf("this dockerd cannot start a privileged container: %v", err)
		if left := e.leftovers(); len(left) > 0 {
			t.Fatalf("failed create_vm left %v", left)
		}
		return
	}
	defer e.r.DeleteVM(e.ctx, spec.CID)
	ct, err := e.r.inspectVM(e.ctx, spec.CID)
	if err != nil {
		t.Fatal(err)
	}
	if !ct.HostConfig.Privileged {
		t.Fatal("container.privileged did not make a privileged container")
	}
}

// mountLine tells whether /proc/mounts has target mounted (with fstype and
// option opt, when given).
func mountLine(mounts, target, fstype, opt string) bool {
	for _, l := range strings.Split(mounts, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[1] != target {
			continue
		}
		if (fstype == "" || f[2] == fstype) && (opt == "" || slices.Contains(strings.Split(f[3], ","), opt)) {
			return true
		}
	}
	return false
}

func hasMount(ms []mount.Mount, target string, readOnly bool) bool {
	for _, m := range ms {
		if m.Target == target && m.ReadOnly == readOnly {
			return true
		}
	}
	return false
}

// A broken rootfs stream fails the import and leaves no image.
func TestImportStemcellBrokenStream(t *testing.T) {
	e := newTestEnv(t)
	cid := stemcell.NewCID()
	tgz := rootfsTgz(t)
	err := e.r.importRootfs(e.ctx, cid, bytes.NewReader(tgz[:len(tgz)/2]))
	if err == nil {
		t.Fatal("import of a truncated tgz succeeded")
	}
	if !strings.Contains(err.Error(), cid) {
		t.Errorf("error does not name the stemcell: %v", err)
	}
	if ok, _ := e.r.HasStemcell(e.ctx, cid); ok {
		t.Error("a truncated import left an image")
	}
}

// Guest truth for one VM: the settings file was there, complete, before
// init ran; the NIC has the settings' MAC; limits reached the cgroup;
// reboot keeps the settings; update_settings rewrites them; metadata
// sticks; logs never carry the mbus password.
func TestCreateVMGuestTruth(t *testing.T) {
	e := newTestEnv(t)
	spec := e.vmSpec()
	in := settingsFor(spec.CID, spec.NICs...)
	in.Networks["default"] = withMAC(in.Networks["default"], "02:b0:5c:0a:0b:0c")
	var logs bytes.Buffer
	e.r.log = slogTo(&logs)
	got, err := e.r.createContainerVM(e.ctx, spec, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Networks["default"].MAC != "02:b0:5c:0a:0b:0c" {
		t.Errorf("settings MAC changed to %s", got.Networks["default"].MAC)
	}
	want, _ := json.Marshal(got)
	if seen := e.mustExec(spec.CID, "cat", "/proof/settings-at-init"); seen != string(want) {
		t.Errorf("settings seen by init:\n%s\nwant:\n%s", seen, want)
	}
	if mode := strings.TrimSpace(e.mustExec(spec.CID, "stat", "-c", "%a", SettingsPath)); mode != "600" {
		t.Errorf("settings file mode %s, want 600", mode)
	}
	if mac := strings.TrimSpace(e.mustExec(spec.CID, "cat", "/sys/class/net/eth0/address")); mac != got.Networks["default"].MAC {
		t.Errorf("guest eth0 MAC %s, settings %s", mac, got.Networks["default"].MAC)
	}
	limit := strings.TrimSpace(e.mustExec(spec.CID, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"))
	if limit != fmt.Sprint(64<<20) {
		t.Errorf("guest memory limit %s, want %d", limit, 64<<20)
	}
	if ok, err := e.r.HasVM(e.ctx, spec.CID); !ok || err != nil {
		t.Fatalf("has_vm: %v %v", ok, err)
	}

	if err := e.r.RebootVM(e.ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	if boots := e.mustExec(spec.CID, "cat", "/proof/boots"); strings.Count(boots, "boot") != 2 {
		t.Errorf("after reboot_vm /proof/boots = %q, want two boots", boots)
	}
	if seen := e.mustExec(spec.CID, "cat", "/proof/settings-at-init"); seen != string(want) {
		t.Error("settings after reboot differ")
	}

	got.Env = map[string]any{"bosh": map[string]any{"group": "updated"}}
	if err := e.r.updateSettings(e.ctx, spec.CID, got); err != nil {
		t.Fatal(err)
	}
	updated, _ := json.Marshal(got)
	if seen := e.mustExec(spec.CID, "cat", SettingsPath); seen != string(updated) {
		t.Errorf("settings after update:\n%s\nwant:\n%s", seen, updated)
	}

	meta := vm.Metadata{"deployment": "d", "job": "j", "index": "0"}
	if err := e.r.SetVMMetadata(e.ctx, spec.CID, meta); err != nil {
		t.Fatal(err)
	}
	if m, err := e.r.VMMetadata(e.ctx, spec.CID); err != nil || fmt.Sprint(m) != fmt.Sprint(meta) {
		t.Errorf("metadata %v %v, want %v", m, err, meta)
	}

	if err := e.r.DeleteVM(e.ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.r.HasVM(e.ctx, spec.CID); ok || err != nil {
		t.Errorf("has_vm after delete: %v %v", ok, err)
	}
	for name, call := range map[string]func() error{
		"delete_vm":       func() error { return e.r.DeleteVM(e.ctx, spec.CID) },
		"reboot_vm":       func() error { return e.r.RebootVM(e.ctx, spec.CID) },
		"set_vm_metadata": func() error { return e.r.SetVMMetadata(e.ctx, spec.CID, meta) },
		"update_settings": func() error { return e.r.updateSettings(e.ctx, spec.CID, got) },
	} {
		if err := call(); !errors.Is(err, cpierr.ErrNotFound) || !strings.Contains(err.Error(), spec.CID) {
			t.Errorf("%s of a deleted VM: want ErrNotFound naming it, got %v", name, err)
		}
	}
	if strings.Contains(logs.String(), secretPassword) {
		t.Error("the mbus password reached the log")
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("after delete_vm: %v", left)
	}
}

// A manual network gets its static IP (and the MAC that goes with it) on a
// Docker network the CPI creates with a matching subnet; the dynamic one
// keeps the MAC from the settings.
func TestManualNetworkStaticIP(t *testing.T) {
	e := newTestEnv(t)
	name, subnet := e.testNetwork()
	_, cidr, _ := net.ParseCIDR(subnet.CIDR)
	ip := cidr.IP.To4()
	ip[3] = 10
	spec := e.vmSpec(
		nicSpec{BOSHNetwork: "manual", DockerNetwork: name, IP: ip.String(), Create: subnet},
		nicSpec{BOSHNetwork: "dynamic"},
	)
	got := e.createVM(e.r, spec)
	nw, err := e.r.api.NetworkInspect(e.ctx, name, networkInspectOpts())
	if err != nil {
		t.Fatal(err)
	}
	if !ours(nw.Labels) {
		t.Errorf("network %s made by create_vm has labels %v", name, nw.Labels)
	}
	links := e.mustExec(spec.CID, "ip", "-o", "addr", "show")
	for bosh, n := range got.Networks {
		mac := n.MAC
		iface := ifaceWithMAC(t, e, spec.CID, mac)
		if iface == "" {
			t.Errorf("no NIC in the guest has the MAC %s of BOSH network %s", mac, bosh)
			continue
		}
		if n.IP != "" && !strings.Contains(links, iface+"    inet "+n.IP+"/24") {
			t.Errorf("NIC %s (%s) lacks static IP %s:\n%s", iface, mac, n.IP, links)
		}
	}
	if err := e.r.DeleteNetwork(e.ctx, name); !errors.Is(err, cpierr.ErrInUse) {
		t.Errorf("delete_network in use: want ErrInUse, got %v", err)
	}
	if err := e.r.DeleteVM(e.ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteNetwork(e.ctx, name); err != nil {
		t.Fatal(err)
	}
}

// ifaceWithMAC is the guest's interface with that MAC, or "".
func ifaceWithMAC(t *testing.T, e *testEnv, cid, mac string) string {
	out := e.mustExec(cid, "sh", "-c", `for i in /sys/class/net/*; do echo "${i##*/} $(cat $i/address)"; done`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && strings.EqualFold(f[1], mac) {
			return f[0]
		}
	}
	return ""
}

// A create_vm that fails at any step leaves no container, volume,
// network or directory behind, and says which VM failed.
func TestFailedCreateLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	name, subnet := e.testNetwork()
	cases := []struct {
		name   string
		modify func(*containerSpec)
		want   error
	}{
		{"unknown stemcell", func(s *containerSpec) { s.StemcellCID = stemcell.NewCID() }, cpierr.ErrNotFound},
		{"missing network", func(s *containerSpec) {
			s.NICs = []nicSpec{{BOSHNetwork: "default", DockerNetwork: e.cfg.NamePrefix + "absent"}}
		}, cpierr.ErrNotFound},
		{"static IP outside the subnet of a network it creates", func(s *containerSpec) {
			s.NICs = []nicSpec{{BOSHNetwork: "default"}, {BOSHNetwork: "m", DockerNetwork: name, IP: "192.0.2.7", Create: subnet}}
		}, nil},
		{"init that does not exist", func(s *containerSpec) {
			s.NICs = []nicSpec{{BOSHNetwork: "m", DockerNetwork: name, IP: hostIn(subnet, 20), Create: subnet}}
			s.Command = []string{"/no/such/init"}
		}, nil},
		{"more vCPUs than the host has", func(s *containerSpec) { s.CPUs = 4096 }, cpierr.ErrImpossible},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := e.vmSpec()
			c.modify(&spec)
			_, err := e.r.createContainerVM(e.ctx, spec, settingsFor(spec.CID, spec.NICs...))
			if err == nil {
				t.Fatal("create_vm succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("want %v, got %v", c.want, err)
			}
			if !strings.Contains(err.Error(), spec.CID) {
				t.Errorf("error does not name the VM: %v", err)
			}
			t.Logf("create_vm failed as it should: %v", err)
			if left := e.leftovers(); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func hostIn(s *Subnet, n byte) string {
	_, cidr, _ := net.ParseCIDR(s.CIDR)
	ip := cidr.IP.To4()
	ip[3] = n
	return ip.String()
}

// An unreachable daemon is cpierr.ErrUnreachable, and the message names it.
func TestOpenUnreachable(t *testing.T) {
	host := "unix:///nonexistent/docker.sock"
	_, err := Open(t.Context(), Config{Host: host}, testLogger(t))
	if !errors.Is(err, cpierr.ErrUnreachable) || !strings.Contains(err.Error(), host) {
		t.Fatalf("want ErrUnreachable naming %s, got %v", host, err)
	}
}

// What a create_stemcell killed between its import and its label leaves (an
// image tagged '.importing' and its unstarted probe container) is removed by
// a later create_stemcell once older than the sweep age, and kept while it
// could still be an import under way; it is never a stemcell.
func TestKilledImportSwept(t *testing.T) {
	e := newTestEnv(t)
	killed := stemcell.NewCID()
	staging := e.r.imageRef(killed) + stagingSuffix
	changes := []string{}
	for k, v := range e.r.labels("stemcell", killed) {
		changes = append(changes, fmt.Sprintf("LABEL %s=%s", k, v))
	}
	out, err := e.r.api.ImageImport(e.ctx, image.ImportSource{Source: bytes.NewReader(rootfsTgz(t)), SourceName: "-"}, staging, image.ImportOptions{Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	if err := readProgress(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	probe, err := e.r.api.ContainerCreate(e.ctx, &container.Config{Image: staging, Cmd: []string{"/sbin/init"}}, nil, nil, nil, e.r.name(killed)+"-probe")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.r.HasStemcell(e.ctx, killed); ok || err != nil {
		t.Fatalf("a killed import is a stemcell: %v %v", ok, err)
	}
	leftovers := func() (img, ctr bool) {
		_, _, ierr := e.r.api.ImageInspectWithRaw(e.ctx, staging)
		_, cerr := e.r.api.ContainerInspect(e.ctx, probe.ID)
		return ierr == nil, cerr == nil
	}
	e.stemcell() // an import while the leftovers are young
	if img, ctr := leftovers(); !img || !ctr {
		t.Fatalf("a young import's leftovers were removed (image %t, probe %t): it may be under way", img, ctr)
	}
	zero := time.Duration(0)
	e.r.sweepAge = &zero
	if err := e.r.importRootfs(e.ctx, stemcell.NewCID(), bytes.NewReader(rootfsTgz(t))); err != nil {
		t.Fatal(err)
	}
	if img, ctr := leftovers(); img || ctr {
		t.Fatalf("an old killed import's leftovers stayed (image %t, probe %t)", img, ctr)
	}
}
