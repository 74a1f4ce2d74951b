package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"
)

// envISO makes a settings disc as a vSphere-style CPI does: an ISO9660
// image holding the settings document as the file name (env or ENV).
func envISO(t *testing.T, name, label string, settings []byte) []byte {
	t.Helper()
	w, err := iso9660.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cleanup()
	if err := w.AddFile(bytes.NewReader(settings), name); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := w.WriteTo(&out, label); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestSourceKind(t *testing.T) {
	env := envISO(t, "ENV", "cdrom", []byte(fullSettings))
	cases := []struct {
		name, device string
		img          []byte
		wantKind     string
	}{
		{"config-2 ISO on the SATA CD-ROM", "sr0", isoWithVolumeID("config-2"), sourceConfigDrive},
		{"config-2 vfat on a disk", "vdb", fatBootSector("FAT16", 43, "CONFIG-2"), sourceConfigDrive},
		{"env ISO in /dev/sr0", "sr0", env, sourceCDROMEnv},
		{"any other ISO label in /dev/sr0", "sr0", isoWithVolumeID("CDROM"), sourceCDROMEnv},
		{"an ISO in another CD-ROM: bosh-agent reads only sr0", "sr1", env, ""},
		{"an ISO on a disk", "vdb", env, ""},
		{"vfat in /dev/sr0", "sr0", fatBootSector("FAT16", 43, "BOSH"), ""},
		{"empty CD-ROM drive", "sr0", nil, ""},
		{"blank disk", "vdc", make([]byte, 64*1024), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if kind, _ := sourceKind(tc.device, bytes.NewReader(tc.img)); kind != tc.wantKind {
				t.Errorf("sourceKind(%s) = %q; want %q", tc.device, kind, tc.wantKind)
			}
		})
	}
}

func TestReadEnvFile(t *testing.T) {
	for _, name := range []string{"env", "ENV"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), []byte(fullSettings+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			data, err := readEnvFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			// The settings read from the disc are the settings the
			// config drive path parses.
			s, err := parseSettings(data)
			if err != nil || s.AgentID != "agent-1" || s.SystemDisk != "vda" {
				t.Fatalf("settings from %s: %+v, %v", name, s, err)
			}
		})
	}
	t.Run("no env file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "user-data"), []byte(fullSettings), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readEnvFile(dir); err == nil || !strings.Contains(err.Error(), "no settings file env") {
			t.Fatalf("readEnvFile = %v; want no settings file env", err)
		}
	})
}

// The settings report says which source the settings came from.
func TestSettingsReportNamesTheSource(t *testing.T) {
	s, err := parseSettings([]byte(fullSettings))
	if err != nil {
		t.Fatal(err)
	}
	r := s.report(settingsSource{device: "/dev/sr0", fstype: "iso9660", kind: sourceCDROMEnv})
	if r.Device != "/dev/sr0" || r.Via != sourceCDROMEnv {
		t.Errorf("report device %q via %q; want /dev/sr0 via %s", r.Device, r.Via, sourceCDROMEnv)
	}
}
