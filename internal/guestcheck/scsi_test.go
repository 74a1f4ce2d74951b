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
		"0:0:0:0": "sr0", // the SATA CD-ROM's host
		"2:0:0:0": "sda", // virtio-scsi target 0: the stemcell's own disk would be elsewhere
		"2:0:1:0": "sdb",
		"2:0:3:0": "sdc",
		"2:0:4:1": "sdd", // LUN 1: not what the rule reads
		"2:1:5:0": "sde", // channel 1: likewise
		"3:0:7:0": "sdf",
		"4:0:7:0": "sdg", // target 7 twice, on two hosts
	}
	root := fakeSysfs(t, []string{"host0", "host2"}, devices)
	rule := SCSIVolumeIDRule{SysRoot: root}
	cases := []struct {
		volumeID string
		want     string
		err      error
	}{
		{"1", "/dev/sdb", nil},
		{"3", "/dev/sdc", nil},
		{"2", "", ErrNoSCSIDevice}, // a wrong volume_id finds nothing
		{"4", "", ErrNoSCSIDevice},
		{"5", "", ErrNoSCSIDevice},
		{"7", "", ErrAmbiguousTarget},
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
	for _, h := range []string{"host0", "host2"} {
		data, err := os.ReadFile(filepath.Join(root, "class/scsi_host", h, "scan"))
		if err != nil || string(data) != "- - -" {
			t.Errorf("%s was not asked to rescan: %q, %v", h, data, err)
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
