package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// The warden path is taken by the settings file, or without it by what
// every container of the runtime has, so a missing file is reported and
// not mistaken for a QEMU guest; a guest with none of them is QEMU.
func TestInContainer(t *testing.T) {
	for _, tc := range []struct {
		present []string
		want    bool
	}{
		{[]string{wardenSettingsPath}, true},
		{[]string{"/.dockerenv"}, true},
		{[]string{wardenDiskDir}, true},
		{nil, false},
		{[]string{"/dev/ttyS0"}, false},
	} {
		exists := func(p string) bool {
			for _, q := range tc.present {
				if p == q {
					return true
				}
			}
			return false
		}
		if got := inContainer(exists); got != tc.want {
			t.Errorf("with %v: inContainer = %v, want %v", tc.present, got, tc.want)
		}
	}
}

// The settings report carries the masked mbus and the document's hash, so
// the password never reaches a log and the whole document can be compared.
func TestSettingsReportMasksMbus(t *testing.T) {
	s, err := parseSettings([]byte(fullSettings))
	if err != nil {
		t.Fatal(err)
	}
	r := s.report(settingsSource{device: wardenSettingsPath, kind: sourceWardenFile})
	if strings.Contains(r.Mbus, "secret") || r.Mbus != "https://mbus:xxxxx@0.0.0.0:6868" {
		t.Errorf("mbus in the report: %q", r.Mbus)
	}
	if r.SettingsSHA256 != fmt.Sprintf("%x", sha256.Sum256([]byte(fullSettings))) {
		t.Errorf("settings hash %s", r.SettingsSHA256)
	}
	if r.AgentID != "agent-1" || r.Device != wardenSettingsPath || strings.Join(r.Networks, ",") != "dhcp,private,public" {
		t.Errorf("report %+v", r)
	}
}

func TestReadWardenSettingsMissing(t *testing.T) {
	if _, err := readWardenSettings(filepath.Join(t.TempDir(), "absent.json")); !os.IsNotExist(err) {
		t.Errorf("want a not-exist error, got %v", err)
	}
}

// A manual network passes only with its static IP on the NIC; a dynamic
// one reports what Docker gave it.
func TestWardenNICReport(t *testing.T) {
	manual := nicPlan{Network: "m", NIC: "eth1", MAC: "02:42:0a:00:00:05", Net: network{Type: "manual", IP: "10.0.0.5", Netmask: "255.255.255.0"}}
	if r := wardenNICReport(manual, []string{"10.0.0.5/24"}); r.Event != guestcheck.EventNIC || r.IP != "10.0.0.5" || r.Type != "manual" || r.Message != "" {
		t.Errorf("static IP present: %+v", r)
	}
	if r := wardenNICReport(manual, []string{"10.0.0.5/16"}); r.Event != guestcheck.EventNIC || !strings.Contains(r.Message, "/16") {
		t.Errorf("wrong prefix not said: %+v", r)
	}
	if r := wardenNICReport(manual, []string{"10.0.0.9/24"}); r.Event != guestcheck.EventError || r.Network != "m" || !strings.Contains(r.Message, "10.0.0.5") {
		t.Errorf("static IP absent: %+v", r)
	}
	dyn := nicPlan{Network: "d", NIC: "eth0", MAC: "02:b0:00:00:00:01", Net: network{Type: "dynamic"}}
	if r := wardenNICReport(dyn, []string{"172.17.0.3/16"}); r.Event != guestcheck.EventNIC || r.IP != "172.17.0.3" || r.Type != "dynamic" {
		t.Errorf("dynamic: %+v", r)
	}
	if r := wardenNICReport(dyn, nil); r.Message == "" {
		t.Errorf("dynamic without address not said: %+v", r)
	}
}

// Disks come and go as mount points; a plain directory is none. A new
// disk gets a marker naming the agent; one with a marker is reported with
// it; one with data but no marker is not overwritten.
func TestWardenDisks(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "disk-plain"), 0o755)
	if got := mountedEntries(dir); len(got) != 0 {
		t.Errorf("plain directories taken for disks: %v", got)
	}
	w := &wardenDisks{rep: &reporter{out: &bytes.Buffer{}}, agentID: "agent-1", dir: dir, known: map[string]bool{}}
	if a, g := w.diff([]string{"d1", "d2"}); strings.Join(a, ",") != "d1,d2" || len(g) != 0 {
		t.Errorf("first diff %v %v", a, g)
	}
	if a, g := w.diff([]string{"d2"}); len(a) != 0 || strings.Join(g, ",") != "d1" {
		t.Errorf("second diff %v %v", a, g)
	}

	os.MkdirAll(filepath.Join(dir, "new", "lost+found"), 0o755)
	r := w.diskReport("new")
	if !r.Created || r.DiskCID != "new" || r.Device != filepath.Join(dir, "new") || r.Message != "" {
		t.Fatalf("new disk: %+v", r)
	}
	again := w.diskReport("new")
	if again.Created || !strings.Contains(string(again.Marker), `"written_by":"agent-1"`) {
		t.Errorf("marked disk: %+v", again)
	}
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "data", "file"), []byte("x"), 0o644)
	if r := w.diskReport("data"); r.Created || !strings.Contains(r.Message, "no marker") {
		t.Errorf("disk with data: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", markerName)); err == nil {
		t.Error("a marker was written onto a disk holding data")
	}
}
