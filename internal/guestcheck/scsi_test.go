package guestcheck

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeSysfs lays out SCSI hosts and devices (host:channel:target:lun ->
// block device name) the way the kernel shows them under /sys.
func fakeSysfs(t *testing.T, hosts []string, devices map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for _, h := range hosts {
		dir := filepath.Join(root, "class/scsi_host", h)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "scan"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for hctl, name := range devices {
		if err := os.MkdirAll(filepath.Join(root, "bus/scsi/devices", hctl, "block", name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestSCSIVolumeIDRuleResolve(t *testing.T) {
	devices := map[string]string{
		"0:0:0:0": "sr0", // the SATA CD-ROM's host: not an sd disk
		"2:0:0:0": "sda", // virtio-scsi target 0: the root disk names host 2
		"2:0:1:0": "sdb",
		"2:0:3:0": "sdc",
		"2:0:4:1": "sdd", // LUN 1: not what the rule reads
		"2:1:5:0": "sde", // channel 1: likewise
		"3:0:7:0": "sdf", // another host: the agent searches the root's only
	}
	root := fakeSysfs(t, []string{"host0", "host2", "host3"}, devices)
	rule := SCSIVolumeIDRule{SysRoot: root}
	cases := []struct {
		volumeID string
		want     string
		err      error
	}{
		{"1", "/dev/sdb", nil},
		{"3", "/dev/sdc", nil},
		{"0", "/dev/sda", nil},
		{"2", "", ErrNoSCSIDevice}, // a wrong volume_id finds nothing
		{"4", "", ErrNoSCSIDevice},
		{"5", "", ErrNoSCSIDevice},
		{"7", "", ErrNoSCSIDevice},
		{"", "", ErrNoVolumeID},
		{"sdb", "", ErrBadVolumeID},
		{"*", "", ErrBadVolumeID},
		{"-1", "", ErrBadVolumeID},
	}
	for _, c := range cases {
		got, err := rule.Resolve(c.volumeID)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Resolve(%q) = %q, %v; want error %v", c.volumeID, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.volumeID, got, err, c.want)
		}
	}
	for h, want := range map[string]string{"host0": "", "host2": "- - -", "host3": ""} {
		data, err := os.ReadFile(filepath.Join(root, "class/scsi_host", h, "scan"))
		if err != nil || string(data) != want {
			t.Errorf("%s scan file %q, %v; want %q (only the root disk's host rescans)", h, data, err, want)
		}
	}
}

// A root disk that is not an sd disk at SCSI target 0 (virtio-blk vda, as
// an OpenStack layout has) leaves the agent no host to search: no disk
// is found, whatever the volume_id.
func TestSCSIVolumeIDRuleNeedsTheRootDiskOnSCSI(t *testing.T) {
	root := fakeSysfs(t, []string{"host0", "host2"}, map[string]string{"0:0:0:0": "sr0", "2:0:1:0": "sdb"})
	if got, err := (SCSIVolumeIDRule{SysRoot: root}).Resolve("1"); !errors.Is(err, ErrNoSCSIHost) {
		t.Errorf("Resolve = %q, %v; want %v", got, err, ErrNoSCSIHost)
	}
}

// A disk report names the volume_id the rule finds the disk by: the
// target of a disk on the root disk's host, nothing for one the rule
// cannot reach.
func TestSCSIVolumeIDOf(t *testing.T) {
	devices := map[string]string{"2:0:0:0": "sda", "2:0:3:0": "sdc", "2:0:4:1": "sdd", "3:0:5:0": "sde"}
	root := fakeSysfs(t, []string{"host2", "host3"}, devices)
	for hctl, name := range devices {
		link := filepath.Join(root, "block", name, "device")
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../bus/scsi/devices/"+hctl, link); err != nil {
			t.Fatal(err)
		}
	}
	rule := SCSIVolumeIDRule{SysRoot: root}
	for name, want := range map[string]string{"sda": "0", "sdc": "3", "sdd": "", "sde": "", "vdb": ""} {
		if got := rule.VolumeIDOf(name); got != want {
			t.Errorf("VolumeIDOf(%s) = %q, want %q", name, got, want)
		}
	}
}

// The volume_id the CPI answers for a SCSI disk reaches the rule.
func TestParseHintKeepsVolumeID(t *testing.T) {
	h, err := ParseHint([]byte(`{"id":"disk-x","volume_id":"3","path":"/dev/sdc"}`))
	if err != nil || h.VolumeID != "3" || h.Path != "/dev/sdc" {
		t.Fatalf("ParseHint = %+v, %v", h, err)
	}
	if h, _ := ParseHint([]byte(`"/dev/vdc"`)); h.VolumeID != "" {
		t.Fatalf("a path hint got a volume_id: %+v", h)
	}
}
