package hypervisor

import (
	"net"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

func TestForURIPicksTheProfileByDriver(t *testing.T) {
	cases := []struct{ uri, driver string }{
		{"qemu:///system", "qemu"}, {"qemu:///session", "qemu"}, {"qemu+ssh://root@h/system", "qemu"},
		{"qemu+unix:///system?socket=/s", "qemu"},
		{"lxc:///system", "lxc"}, {"lxc+unix:///system?socket=/run/x/libvirt-sock", "lxc"}, {"lxc+ssh://root@h/system", "lxc"},
		{"vbox:///session", "vbox"}, {"vbox+ssh://user@h/session", "vbox"}, {"vbox+tls://h/session", "vbox"},
		{"xen:///system", "xen"}, {"xen+ssh://root@h/system", "xen"}, {"xen+tls://h/system", "xen"},
		{"vmwarews:///session", "vmwarews"}, {"vmwarews+ssh://user@h/session", "vmwarews"},
	}
	for _, c := range cases {
		if p, err := ForURI(c.uri); err != nil || p.Driver != c.driver {
			t.Errorf("ForURI(%q) = %q, %v; want the %s profile", c.uri, p.Driver, err, c.driver)
		}
	}
	for _, uri := range []string{"test:///default", "bhyve:///system"} {
		_, err := ForURI(uri)
		driver, _, _ := strings.Cut(strings.SplitN(uri, ":", 2)[0], "+")
		if err == nil || !strings.Contains(err.Error(), "'"+driver+"'") || !strings.Contains(err.Error(), "supported drivers: lxc, qemu, vbox, vmwarews, xen") {
			t.Errorf("ForURI(%q) = %v; want a refusal naming driver %s and the supported ones", uri, err, driver)
		}
	}
	if _, err := ForURI("no scheme"); err == nil {
		t.Error("a URI without a scheme was accepted")
	}
}

func TestPersistentTarget(t *testing.T) {
	cases := map[int]string{0: "vdc", 1: "vdd", 23: "vdz", 24: "vdaa", 25: "vdab", 50: "vdba"}
	for i, want := range cases {
		if got, err := QEMU.PersistentTarget(i); err != nil || got != want {
			t.Errorf("PersistentTarget(%d) = %q, %v; want %q", i, got, err, want)
		}
	}
	if _, err := QEMU.PersistentTarget(-1); err == nil {
		t.Error("PersistentTarget(-1) succeeded")
	}
}

func TestPersistentHintIsTheVirtioSerial(t *testing.T) {
	// For a by-id CID the serial whose by-id link is the CID, for a legacy
	// CID its hash serial.
	legacy := "disk-11111111-2222-3333-4444-555555555555"
	for cid, wantID := range map[string]string{"virtio-abcdefgh23456": "abcdefgh23456", legacy: disk.Serial(legacy)} {
		if got := QEMU.PersistentHint(cid, "vdd"); got != (disk.Hint{ID: wantID, Path: "/dev/vdd"}) {
			t.Errorf("PersistentHint(%s) = %+v; want id %s at /dev/vdd", cid, got, wantID)
		}
	}
}

func TestNewMACIsUnicastUnderThePrefix(t *testing.T) {
	mac, err := QEMU.NewMAC()
	hw, perr := net.ParseMAC(mac)
	if err != nil || perr != nil || !strings.HasPrefix(mac, "52:54:00:") || hw[0]&1 != 0 {
		t.Fatalf("NewMAC = %q, %v, %v", mac, err, perr)
	}
}

func TestCompleteVMGivesMACsTargetsAndHints(t *testing.T) {
	for _, inSettings := range []bool{true, false} {
		spec := vm.Spec{CID: "vm-11111111-2222-3333-4444-555555555555",
			NICs:                      []vm.NIC{{BOSHNetwork: "a"}, {BOSHNetwork: "b"}},
			Disks:                     []vm.AttachedDisk{{DiskCID: "virtio-abcdefgh23456"}, {DiskCID: "virtio-bbcdefgh23456"}},
			PersistentDisksInSettings: inSettings}
		settings := agentsettings.New("agent", spec.CID, config.Agent{}, nil)
		settings.Networks["a"] = agentsettings.Network{Type: "manual"}
		settings.Networks["b"] = agentsettings.Network{Type: "dynamic"}
		spec, settings, err := QEMU.CompleteVM(spec, settings)
		if err != nil {
			t.Fatal(err)
		}
		for _, nic := range spec.NICs {
			if nic.MAC == "" || settings.Networks[nic.BOSHNetwork].MAC != nic.MAC {
				t.Errorf("NIC %s: MAC %q, settings MAC %q", nic.BOSHNetwork, nic.MAC, settings.Networks[nic.BOSHNetwork].MAC)
			}
		}
		if spec.Disks[0].Target != "vdc" || spec.Disks[1].Target != "vdd" {
			t.Errorf("targets %+v", spec.Disks)
		}
		if settings.Disks.System != "/dev/vda" || settings.Disks.Ephemeral == nil ||
			*settings.Disks.Ephemeral != (disk.Hint{ID: EphemeralDiskSerial(spec.CID), Path: "/dev/vdb"}) {
			t.Errorf("system/ephemeral hints %+v", settings.Disks)
		}
		want := map[string]disk.Hint{}
		if inSettings {
			want["virtio-abcdefgh23456"] = disk.Hint{ID: "abcdefgh23456", Path: "/dev/vdc"}
			want["virtio-bbcdefgh23456"] = disk.Hint{ID: "bbcdefgh23456", Path: "/dev/vdd"}
		}
		if len(settings.Disks.Persistent) != len(want) {
			t.Errorf("in settings %v: persistent %+v; want %+v", inSettings, settings.Disks.Persistent, want)
		}
		for cid, hint := range want {
			if settings.Disks.Persistent[cid] != hint {
				t.Errorf("disk %s: hint %+v; want %+v", cid, settings.Disks.Persistent[cid], hint)
			}
		}
	}
}

// An LXC VM's settings follow the warden contract: no system device,
// the ephemeral disk a directory, persistent disks paths under
// /warden-cpi-dev named by their CID, MACs in 00:16:3e.
func TestLXCCompletesWardenSettings(t *testing.T) {
	spec := vm.Spec{CID: "vm-1", NICs: []vm.NIC{{BOSHNetwork: "n1"}, {BOSHNetwork: "n2"}},
		Disks: []vm.AttachedDisk{{DiskCID: "disk-a"}, {DiskCID: "disk-b"}}, PersistentDisksInSettings: true}
	settings := agentsettings.Settings{Networks: map[string]agentsettings.Network{"n1": {}, "n2": {}}}
	spec, settings, err := LXC.CompleteVM(spec, settings)
	if err != nil {
		t.Fatal(err)
	}
	if settings.Disks.System != "" || settings.Disks.Ephemeral == nil || settings.Disks.Ephemeral.Path != "/var/vcap/data" {
		t.Errorf("system %q, ephemeral %+v; want no system disk and the ephemeral directory", settings.Disks.System, settings.Disks.Ephemeral)
	}
	for i, cid := range []string{"disk-a", "disk-b"} {
		want := disk.Hint{ID: cid, Path: "/warden-cpi-dev/" + cid}
		if settings.Disks.Persistent[cid] != want || spec.Disks[i].Target != want.Path {
			t.Errorf("disk %s: hint %+v, target %q; want %+v", cid, settings.Disks.Persistent[cid], spec.Disks[i].Target, want)
		}
	}
	for _, nic := range spec.NICs {
		if !strings.HasPrefix(nic.MAC, "00:16:3e:") || settings.Networks[nic.BOSHNetwork].MAC != nic.MAC {
			t.Errorf("NIC %s: MAC %q, settings MAC %q", nic.BOSHNetwork, nic.MAC, settings.Networks[nic.BOSHNetwork].MAC)
		}
	}
	if _, err := LXC.PersistentTarget(0); err == nil {
		t.Error("the LXC profile gave a device target")
	}
}
