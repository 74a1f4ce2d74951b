package hypervisor

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// Each profile's facts, as the hypervisor's stemcells read them.
func TestProfilesOfVBoxXenVMware(t *testing.T) {
	cases := []struct {
		p                          Profile
		formats, delivery, mac     string
		system, ephemeralPath      string
		ephemeralVolume            string
		firstTarget, firstVolumeID string
		nicModel, firmware         string
	}{
		{VBox, "vsphere-ovf general-ovf", "cdrom-env", "08:00:27", "/dev/sda", "/dev/sdb", "1", "sdc", "2", "82540EM", "efi"},
		{Xen, "openstack-qcow2 openstack-raw", "config-2", "00:16:3e", "/dev/xvda", "/dev/xvdb", "", "xvdc", "", "-", ""},
		{VMware, "vsphere-ovf general-ovf", "cdrom-env", "00:50:56", "/dev/sda", "/dev/sdb", "1", "sdc", "2", "vmxnet3", "efi"},
	}
	for _, c := range cases {
		t.Run(c.p.Driver, func(t *testing.T) {
			p := c.p
			if got := strings.Join(p.StemcellFormats, " "); got != c.formats {
				t.Errorf("formats %q, want %q", got, c.formats)
			}
			if string(p.Delivery) != c.delivery || p.MACPrefix != c.mac || p.SystemDisk() != c.system {
				t.Errorf("delivery %s, MAC prefix %s, system disk %s; want %s, %s, %s", p.Delivery, p.MACPrefix, p.SystemDisk(), c.delivery, c.mac, c.system)
			}
			if h := p.EphemeralHint("vm-1"); h.Path != c.ephemeralPath || h.VolumeID != c.ephemeralVolume || h.ID != "" {
				t.Errorf("ephemeral hint %+v; want path %s volume_id %q", h, c.ephemeralPath, c.ephemeralVolume)
			}
			target, err := p.PersistentTarget(0)
			if err != nil || target != c.firstTarget {
				t.Fatalf("first persistent target %q, %v; want %s", target, err, c.firstTarget)
			}
			if h := p.PersistentHint("disk-x", target); h.Path != "/dev/"+c.firstTarget || h.VolumeID != c.firstVolumeID || h.ID != "" {
				t.Errorf("persistent hint %+v; want path /dev/%s volume_id %q and no serial id", h, c.firstTarget, c.firstVolumeID)
			}
			if p.Devices.NICModel != c.nicModel || p.Devices.Firmware != c.firmware || !p.Devices.NoSerials {
				t.Errorf("devices %+v; want NIC model %s, firmware %q, no serials", p.Devices, c.nicModel, c.firmware)
			}
		})
	}
}

// The SCSI target id of a disk follows its target: VirtualBox port = index,
// VMware's scsi0 unit skips 7, the controller's own id.
func TestSCSIVolumeIDs(t *testing.T) {
	cases := []struct {
		p      Profile
		target string
		want   string
	}{
		{VBox, "sda", "0"}, {VBox, "sdg", "6"}, {VBox, "sdh", "7"}, {VBox, "sdp", "15"},
		{VMware, "sdg", "6"}, {VMware, "sdh", "8"}, {VMware, "sdo", "15"},
	}
	for _, c := range cases {
		if got := c.p.PersistentHint("d", c.target).VolumeID; got != c.want {
			t.Errorf("%s %s: volume_id %q, want %q", c.p.Driver, c.target, got, c.want)
		}
	}
}

// One SCSI controller's worth of disks: the hint's target id would repeat
// on a second one.
func TestSCSIProfilesStopAtOneController(t *testing.T) {
	cases := []struct {
		p    Profile
		last string
	}{{VBox, "sdp"}, {VMware, "sdo"}}
	for _, c := range cases {
		n := c.p.TargetLimit - c.p.FirstPersistentTarget
		if got, err := c.p.PersistentTarget(n - 1); err != nil || got != c.last {
			t.Errorf("%s: last target %q, %v; want %s", c.p.Driver, got, err, c.last)
		}
		if got, err := c.p.PersistentTarget(n); err == nil || !strings.Contains(err.Error(), c.p.Driver) {
			t.Errorf("%s: target past the controller %q, %v; want an error naming the profile", c.p.Driver, got, err)
		}
	}
}

func TestVMwareMACsStayInTheStaticRange(t *testing.T) {
	for range 200 {
		mac, err := VMware.NewMAC()
		hw, perr := net.ParseMAC(mac)
		if err != nil || perr != nil || !strings.HasPrefix(mac, "00:50:56:") || hw[3] > 0x3f {
			t.Fatalf("NewMAC = %q, %v, %v; want 00:50:56:00:00:00-00:50:56:3f:ff:ff", mac, err, perr)
		}
	}
}

// What a driver cannot do is answered naming the driver; Xen can do all.
func TestRefusalsNameTheDriver(t *testing.T) {
	cases := []struct {
		p       Profile
		refused []Operation
		allowed []Operation
	}{
		{VBox, []Operation{OpImportStemcell, OpCreateVM, OpCreateDisk, OpAttachDisk, OpDetachDisk, OpSetVMMetadata}, nil},
		{VMware, []Operation{OpImportStemcell, OpCreateVM, OpCreateDisk, OpAttachDisk, OpDetachDisk, OpSetVMMetadata}, nil},
		{Xen, nil, []Operation{OpImportStemcell, OpCreateVM, OpCreateDisk, OpAttachDisk, OpDetachDisk, OpSetVMMetadata}},
		{QEMU, nil, []Operation{OpCreateVM, OpAttachDisk, OpSetVMMetadata}},
	}
	for _, c := range cases {
		for _, op := range c.refused {
			err := c.p.RefusalError(op)
			if err == nil || !strings.Contains(err.Error(), "libvirt's "+c.p.Driver+" driver") || !strings.Contains(err.Error(), string(op)) {
				t.Errorf("%s %s: %v; want a refusal naming the method and the driver", c.p.Driver, op, err)
			}
		}
		for _, op := range c.allowed {
			if err := c.p.RefusalError(op); err != nil {
				t.Errorf("%s %s refused: %v", c.p.Driver, op, err)
			}
		}
	}
}

// URIs per hypervisor: local and remote forms, and the path each serves.
func TestURIsPerHypervisor(t *testing.T) {
	cases := []struct {
		p               Profile
		host, transport string
		want            string
	}{
		{VBox, "", "", "vbox:///session"},
		{VBox, "user@h", "ssh", "vbox+ssh://user@h/session"},
		{Xen, "", "", "xen:///system"},
		{Xen, "h:16514", "tls", "xen+tls://h:16514/system"},
		{VMware, "", "", "vmwarews:///session"},
		{VMware, "user@h", "ssh", "vmwarews+ssh://user@h/session"},
		{QEMU, "h", "tls", "qemu+tls://h/system"},
	}
	for _, c := range cases {
		got := c.p.URI(c.host, c.transport)
		if got != c.want {
			t.Errorf("%s URI(%q, %q) = %q, want %q", c.p.Driver, c.host, c.transport, got, c.want)
		}
		if p, err := ForURI(got); err != nil || p.Driver != c.p.Driver {
			t.Errorf("ForURI(%q) = %s, %v; want the %s profile", got, p.Driver, err, c.p.Driver)
		}
	}
	for _, uri := range []string{"vbox:///system", "xen:///session", "vmwarews:///system"} {
		if _, err := ForURI(uri); err == nil || !strings.Contains(err.Error(), "serves") {
			t.Errorf("ForURI(%q) = %v; want a refusal of the path", uri, err)
		}
	}
	for driver, word := range map[string]string{"esx": "SOAP", "vmwareplayer": "vmwarews profile"} {
		if _, err := ForURI(driver + "://h/"); err == nil || !strings.Contains(err.Error(), word) {
			t.Errorf("ForURI(%s) = %v; want what that driver would need (%s)", driver, err, word)
		}
	}
}

// CompleteVM for a SCSI-hint profile puts volume_id hints in the settings.
func TestVBoxCompletesSCSIHints(t *testing.T) {
	spec := vm.Spec{CID: "vm-1", NICs: []vm.NIC{{BOSHNetwork: "n"}},
		Disks: []vm.AttachedDisk{{DiskCID: "disk-a"}}, PersistentDisksInSettings: true}
	settings := agentsettings.Settings{Networks: map[string]agentsettings.Network{"n": {}}}
	spec, settings, err := VBox.CompleteVM(spec, settings)
	if err != nil {
		t.Fatal(err)
	}
	if want := (disk.Hint{VolumeID: "2", Path: "/dev/sdc"}); settings.Disks.Persistent["disk-a"] != want || spec.Disks[0].Target != "sdc" {
		t.Errorf("hint %+v target %q; want %+v at sdc", settings.Disks.Persistent["disk-a"], spec.Disks[0].Target, want)
	}
	if !strings.HasPrefix(spec.NICs[0].MAC, "08:00:27:") {
		t.Errorf("MAC %s; want VirtualBox's 08:00:27", spec.NICs[0].MAC)
	}
	if errors.Is(VBox.RefusalError(OpCreateVM), nil) {
		t.Error("create_vm on vbox is not refused")
	}
}
