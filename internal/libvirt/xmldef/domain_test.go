package xmldef

import (
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

const testCID = "vm-11111111-2222-3333-4444-555555555555"

// secretSpec is a spec whose config drive carries a password that must
// never show up in domain XML.
func secretSpec() vm.Spec {
	return vm.Spec{
		CID:         testCID,
		AgentID:     "agent-1",
		StemcellCID: "sc-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
		Props:       vm.Props{CPUs: 2, MemoryMiB: 2048, EphemeralDiskMiB: 4096},
		NICs: []vm.NIC{
			{BOSHNetwork: "default", LibvirtNetwork: "net-a", MAC: "52:54:00:AB:CD:01"},
			{BOSHNetwork: "other", LibvirtNetwork: "net-b", MAC: "52:54:00:00:00:02"},
		},
	}
}

func testPlan(domainType, machine string, hotplug int, persistent ...libvirtxml.DomainDisk) Plan {
	p := NewPlan(secretSpec(), hypervisor.QEMU, domainType, machine, hotplug, "/store/console/"+testCID+".log")
	p.RootPath = "/pool/" + testCID + "-root"
	p.EphemeralPath = "/pool/" + testCID + "-ephemeral"
	p.ConfigPath = "/pool/" + testCID + "-config.iso"
	p.PersistentDisks = persistent
	return p
}

// rebuilt marshals and re-parses the domain, as libvirt would receive it.
func rebuilt(t *testing.T, p Plan) (libvirtxml.Domain, string) {
	t.Helper()
	def, err := Build(p)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	doc, err := def.Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back libvirtxml.Domain
	if err := back.Unmarshal(doc); err != nil {
		t.Fatalf("re-parse: %v\n%s", err, doc)
	}
	return back, doc
}

func TestDomainTypeAndCPUMode(t *testing.T) {
	cases := []struct {
		domainType, wantMode string
	}{
		{"kvm", "host-passthrough"},
		{"qemu", "maximum"},
	}
	for _, c := range cases {
		t.Run(c.domainType, func(t *testing.T) {
			def, _ := rebuilt(t, testPlan(c.domainType, "q35", 4))
			if def.Type != c.domainType {
				t.Errorf("type = %q, want %q", def.Type, c.domainType)
			}
			if def.CPU == nil || def.CPU.Mode != c.wantMode {
				t.Errorf("cpu = %+v, want mode %q", def.CPU, c.wantMode)
			}
		})
	}
}

func TestDomainBasics(t *testing.T) {
	def, _ := rebuilt(t, testPlan("qemu", "q35", 4))
	checks := []struct {
		what      string
		got, want any
	}{
		{"name", def.Name, testCID},
		{"title", def.Title, "bosh vm " + testCID},
		{"memory", *def.Memory, libvirtxml.DomainMemory{Value: 2048, Unit: "MiB"}},
		{"vcpus", def.VCPU.Value, uint(2)},
		{"os type", def.OS.Type.Type, "hvm"},
		{"machine", def.OS.Type.Machine, "q35"},
		{"acpi", def.Features.ACPI != nil, true},
		{"apic", def.Features.APIC != nil, true},
		{"clock", def.Clock.Offset, "utc"},
		{"on_poweroff", def.OnPoweroff, "destroy"},
		{"on_reboot", def.OnReboot, "restart"},
		{"on_crash", def.OnCrash, "destroy"},
		{"memballoon", def.Devices.MemBalloon.Model, "virtio"},
		{"rng", def.Devices.RNGs[0].Backend.Random.Device, "/dev/urandom"},
		{"no graphics", len(def.Devices.Graphics), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestDomainNICsKeepTheirMAC(t *testing.T) {
	def, _ := rebuilt(t, testPlan("qemu", "q35", 0))
	want := []struct{ mac, network string }{
		{"52:54:00:ab:cd:01", "net-a"},
		{"52:54:00:00:00:02", "net-b"},
	}
	if len(def.Devices.Interfaces) != len(want) {
		t.Fatalf("%d interfaces, want %d", len(def.Devices.Interfaces), len(want))
	}
	for i, w := range want {
		iface := def.Devices.Interfaces[i]
		if iface.MAC.Address != w.mac || iface.Source.Network.Network != w.network || iface.Model.Type != "virtio" {
			t.Errorf("interface %d = mac %s network %s model %s, want %s on %s virtio",
				i, iface.MAC.Address, iface.Source.Network.Network, iface.Model.Type, w.mac, w.network)
		}
	}
}

func TestUserModeNICHasNoNetworkAndPassesSchemaChecks(t *testing.T) {
	p := testPlan("qemu", "q35", 0)
	p.NICs = []vm.NIC{{BOSHNetwork: "laptop", MAC: "52:54:00:ab:cd:09", UserMode: true, Dynamic: true}}
	if err := ValidateNICs(p.NICs); err != nil {
		t.Fatalf("ValidateNICs refuses a user-mode NIC: %v", err)
	}
	def, _ := rebuilt(t, p)
	iface := def.Devices.Interfaces[0]
	if iface.Source == nil || iface.Source.User == nil || iface.Source.Network != nil || iface.MAC.Address != "52:54:00:ab:cd:09" {
		t.Fatalf("interface = %+v; want a user-mode source with the settings' MAC", iface)
	}
}

func TestDomainDisks(t *testing.T) {
	legacy := "disk-99999999-8888-7777-6666-555555555555"
	// A by-id CID's serial makes the guest's link the CID; a legacy CID keeps its hash.
	for cid, serial := range map[string]string{"virtio-abcdefgh23456": "abcdefgh23456", legacy: disk.Serial(legacy)} {
		t.Run(cid, func(t *testing.T) { checkDomainDisks(t, cid, serial) })
	}
}

func checkDomainDisks(t *testing.T, diskCID, serial string) {
	persistent := PersistentDiskDevice("/pool/"+diskCID, disk.FormatRaw, diskCID, "vdc")
	def, _ := rebuilt(t, testPlan("qemu", "q35", 0, persistent))
	want := []struct {
		device, target, bus, source, format, serial string
		boot, readonly                              bool
	}{
		{"disk", "vda", "virtio", "/pool/" + testCID + "-root", "qcow2", disk.Serial(testCID + "-root"), true, false},
		{"disk", "vdb", "virtio", "/pool/" + testCID + "-ephemeral", "qcow2", disk.Serial(testCID + "-ephemeral"), false, false},
		{"cdrom", "sda", "sata", "/pool/" + testCID + "-config.iso", "raw", "", false, true},
		{"disk", "vdc", "virtio", "/pool/" + diskCID, "raw", serial, false, false},
	}
	if len(def.Devices.Disks) != len(want) {
		t.Fatalf("%d disks, want %d", len(def.Devices.Disks), len(want))
	}
	for i, w := range want {
		d := def.Devices.Disks[i]
		got := []string{d.Device, d.Target.Dev, d.Target.Bus, d.Source.File.File, d.Driver.Type, d.Serial}
		exp := []string{w.device, w.target, w.bus, w.source, w.format, w.serial}
		if strings.Join(got, " ") != strings.Join(exp, " ") {
			t.Errorf("disk %d = %v, want %v", i, got, exp)
		}
		if (d.Boot != nil) != w.boot || (d.ReadOnly != nil) != w.readonly {
			t.Errorf("disk %d: boot %v readonly %v, want %v %v", i, d.Boot != nil, d.ReadOnly != nil, w.boot, w.readonly)
		}
	}
}

func TestDomainHotplugRootPorts(t *testing.T) {
	// q35 devices at define: root, ephemeral, 2 NICs, balloon, rng = 6
	// (the SATA CD-ROM needs no port).
	cases := []struct {
		machine    string
		hotplug    int
		persistent int
		wantPorts  int
	}{
		{"q35", 24, 0, 24 + 6},
		{"q35", 30, 2, 30 + 8},
		{"q35", 0, 0, 6},
		{"pc", 24, 0, 0},
	}
	for _, c := range cases {
		var disks []libvirtxml.DomainDisk
		for i := range c.persistent {
			disks = append(disks, PersistentDiskDevice("/p", disk.FormatQcow2, "disk-x", []string{"vdc", "vdd"}[i]))
		}
		def, _ := rebuilt(t, testPlan("qemu", c.machine, c.hotplug, disks...))
		ports, roots := 0, 0
		for _, ctl := range def.Devices.Controllers {
			switch ctl.Model {
			case "pcie-root-port":
				ports++
			case "pcie-root":
				roots++
			}
		}
		if ports != c.wantPorts {
			t.Errorf("%s hotplug %d persistent %d: %d root ports, want %d", c.machine, c.hotplug, c.persistent, ports, c.wantPorts)
		}
		if wantRoot := map[bool]int{true: 1, false: 0}[c.machine == "q35"]; roots != wantRoot {
			t.Errorf("%s: %d pcie-root controllers, want %d", c.machine, roots, wantRoot)
		}
	}
}

func TestDomainConsoleGoesToFile(t *testing.T) {
	def, _ := rebuilt(t, testPlan("qemu", "q35", 0))
	logPath := "/store/console/" + testCID + ".log"
	if len(def.Devices.Serials) != 1 || def.Devices.Serials[0].Source.File.Path != logPath {
		t.Errorf("serials = %+v, want one writing %s", def.Devices.Serials, logPath)
	}
	if len(def.Devices.Consoles) != 1 || def.Devices.Consoles[0].Target.Type != "serial" {
		t.Errorf("consoles = %+v, want one on the serial port", def.Devices.Consoles)
	}
}

func TestDomainMetadataMarksOwnershipAndHoldsNoSecrets(t *testing.T) {
	def, doc := rebuilt(t, testPlan("qemu", "q35", 0))
	if strings.Contains(doc, "s3cret-mbus-password") || strings.Contains(doc, "mbus") {
		t.Errorf("domain XML leaks agent settings:\n%s", doc)
	}
	marker, err := ParseMarker(def.Metadata.XML)
	if err != nil {
		t.Fatalf("metadata element: %v (%s)", err, def.Metadata.XML)
	}
	if marker.XMLName.Space != MetadataNS || marker.AgentID != "agent-1" || marker.StemcellCID != secretSpec().StemcellCID {
		t.Errorf("marker = %+v", marker)
	}
}

func TestTitleAndDescription(t *testing.T) {
	cases := []struct {
		name      string
		meta      vm.Metadata
		wantTitle string
		wantDesc  string
	}{
		{"deployment job index", vm.Metadata{"deployment": "cf", "job": "router", "index": "0", "director": "d"},
			"cf/router/0", "deployment=cf\ndirector=d\nindex=0\njob=router"},
		{"name only", vm.Metadata{"name": "bosh/0"}, "bosh/0", "name=bosh/0"},
		{"nothing known", vm.Metadata{"foo": "bar"}, "bosh vm " + testCID, "foo=bar"},
		{"newlines flattened", vm.Metadata{"deployment": "a\nb"}, "a b", "deployment=a b"},
		{"empty", vm.Metadata{}, "bosh vm " + testCID, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := TitleFor(testCID, c.meta); got != c.wantTitle {
				t.Errorf("title = %q, want %q", got, c.wantTitle)
			}
			if got := DescriptionFor(c.meta); got != c.wantDesc {
				t.Errorf("description = %q, want %q", got, c.wantDesc)
			}
		})
	}
}

func TestMarkerTagsKeepIdentity(t *testing.T) {
	m := Marker{AgentID: "a", StemcellCID: "sc", Tags: []MarkerTag{{Key: "old", Value: "x"}}}
	doc, err := m.WithTags(vm.Metadata{"b": "2", "a": "1"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseMarker(doc)
	if err != nil {
		t.Fatal(err)
	}
	if back.AgentID != "a" || back.StemcellCID != "sc" || len(back.Tags) != 2 || back.Tags[0] != (MarkerTag{"a", "1"}) {
		t.Errorf("marker after tags = %+v", back)
	}
}

func TestValidateNICs(t *testing.T) {
	cases := []struct {
		name    string
		nic     vm.NIC
		wantErr string
	}{
		{"fine", vm.NIC{BOSHNetwork: "n", LibvirtNetwork: "l", MAC: "52:54:00:12:34:56"}, ""},
		{"upper case fine", vm.NIC{BOSHNetwork: "n", LibvirtNetwork: "l", MAC: "52:54:00:AB:CD:EF"}, ""},
		{"no network", vm.NIC{BOSHNetwork: "n", MAC: "52:54:00:12:34:56"}, "names no libvirt network"},
		{"garbage MAC", vm.NIC{BOSHNetwork: "n", LibvirtNetwork: "l", MAC: "nope"}, "not a MAC"},
		{"empty MAC", vm.NIC{BOSHNetwork: "n", LibvirtNetwork: "l"}, "not a MAC"},
		{"multicast MAC", vm.NIC{BOSHNetwork: "n", LibvirtNetwork: "l", MAC: "01:00:5e:00:00:01"}, "multicast"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateNICs([]vm.NIC{c.nic})
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error = %v, want one mentioning %q", err, c.wantErr)
			}
		})
	}
}

// TestBuildNeedsTheHypervisorsDecorator: a profile without a decorate
// function of its own gets no domain half made for another hypervisor.
func TestBuildNeedsTheHypervisorsDecorator(t *testing.T) {
	p := testPlan("qemu", "q35", 1)
	p.Profile.Driver = "bhyve"
	if _, err := Build(p); err == nil || !strings.Contains(err.Error(), "hypervisor 'bhyve'") {
		t.Fatalf("Build for a driver without a decorator = %v; want an error naming it", err)
	}
}
