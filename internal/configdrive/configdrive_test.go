package configdrive

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdomanski/iso9660"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
)

func sampleSettings() agentsettings.Settings {
	s := agentsettings.New("agent-1", "vm-1", config.Agent{Mbus: "https://mbus:secret@0.0.0.0:6868", NTP: []string{"pool.ntp.org"}}, nil)
	s.Networks["default"] = agentsettings.Network{Type: "manual", IP: "10.0.0.5", MAC: "52:54:00:00:00:01"}
	return s
}

func TestBuildWritesAllFourFiles(t *testing.T) {
	iso, err := Build(sampleSettings(), agentsettings.NewMetaData("vm-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	img, err := iso9660.OpenImage(bytes.NewReader(iso))
	if err != nil {
		t.Fatal(err)
	}
	label, err := img.Label()
	if err != nil {
		t.Fatal(err)
	}
	if label != Label {
		t.Fatalf("volume label = %q; want %q", label, Label)
	}
	root, _ := img.RootDir()
	for _, path := range []string{EC2UserData, EC2MetaData, OpenStackUserData, OpenStackMetaData} {
		f, err := find(root, strings.Split(path, "/")...)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var doc map[string]any
		if err := json.NewDecoder(f.Reader()).Decode(&doc); err != nil {
			t.Fatalf("%s is not JSON: %v", path, err)
		}
	}
}

func TestReadUserDataRoundTrips(t *testing.T) {
	want := sampleSettings()
	iso, err := Build(want, agentsettings.NewMetaData("vm-1", []string{"ssh-ed25519 AAAA test"}))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ReadUserData(iso)
	if err != nil {
		t.Fatal(err)
	}
	var got agentsettings.Settings
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.AgentID != want.AgentID || got.Networks["default"].MAC != "52:54:00:00:00:01" || got.Mbus != want.Mbus {
		t.Fatalf("round trip lost data: %+v", got)
	}
}

// TestLabelVisibleToBlkid checks the label the way the guest's tools see it
// (a2geek's CPI wrote a drive whose label blkid could not see).
func TestLabelVisibleToBlkid(t *testing.T) {
	blkid, err := exec.LookPath("blkid")
	if err != nil {
		t.Fatalf("blkid (util-linux) is needed for this test: %v", err)
	}
	iso, err := Build(sampleSettings(), agentsettings.NewMetaData("vm-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.iso")
	if err := os.WriteFile(file, iso, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(blkid, "-p", "-o", "export", file).CombinedOutput()
	if err != nil {
		t.Fatalf("blkid: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "LABEL="+Label) || !strings.Contains(string(out), "TYPE=iso9660") {
		t.Fatalf("blkid does not see an iso9660 labelled %s:\n%s", Label, out)
	}
}

// TestEnvDiscHoldsTheSettingsAsEnv: the disc bosh-agent's CDROM source
// reads holds one file, the settings JSON, under the name Linux shows as
// env, and is not labelled config-2.
func TestEnvDiscHoldsTheSettingsAsEnv(t *testing.T) {
	settings := agentsettings.Settings{AgentID: "agent-env", Mbus: "https://mbus:secret@0.0.0.0:6868"}
	iso, err := BuildEnvDisc(settings)
	if err != nil {
		t.Fatal(err)
	}
	img, err := iso9660.OpenImage(bytes.NewReader(iso))
	if err != nil {
		t.Fatal(err)
	}
	root, err := img.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	children, err := root.GetChildren()
	if err != nil || len(children) != 1 || !strings.EqualFold(children[0].Name(), EnvFile) {
		t.Fatalf("disc holds %v, %v; want one file env", children, err)
	}
	raw, err := io.ReadAll(children[0].Reader())
	if err != nil {
		t.Fatal(err)
	}
	var back agentsettings.Settings
	if err := json.Unmarshal(raw, &back); err != nil || back.AgentID != "agent-env" || back.Mbus != settings.Mbus {
		t.Fatalf("env = %s, %v; want the settings", raw, err)
	}
	if label, err := img.Label(); err != nil || strings.EqualFold(label, Label) {
		t.Fatalf("disc label %q, %v; must not be %s", label, err, Label)
	}
}
