package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/configdrive"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// configDriveSettings reads the agent settings out of the VM's config drive
// volume, as the guest would see them on its next read.
func configDriveSettings(t *testing.T, vmCID string) agentsettings.Settings {
	t.Helper()
	iso := filepath.Join(t.TempDir(), "config.iso")
	mustVirsh(t, "vol-download", "--pool", suite.Pool, vmCID+"-config.iso", iso)
	raw, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	userData, err := configdrive.ReadUserData(raw)
	if err != nil {
		t.Fatal(err)
	}
	var s agentsettings.Settings
	if err := json.Unmarshal(userData, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStemcellAPIv1SettingsFollowAttachAndDetach: an agent of a stemcell
// without API v2 learns about disks only from its settings, so attach and
// detach rewrite the config drive.
func TestStemcellAPIv1SettingsFollowAttachAndDetach(t *testing.T) {
	stemcell := importBootableStemcell(t)
	v1 := suite.Client
	v1.StemcellAPIVersion = 1
	vmCID, run, err := v1.CreateVM("agent-v1", stemcell, map[string]any{"memory": 384}, suite.Networks(25), map[string]any{}, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, run.Stderr)
	}
	defer call(t, "delete_vm", vmCID)
	diskCID := createDisk(t, 16, nil)

	if _, run, err := v1.Call("attach_disk", vmCID, diskCID); err != nil {
		t.Fatalf("%v\n%s", err, run.Stderr)
	}
	hint, ok := configDriveSettings(t, vmCID).Disks.Persistent[diskCID]
	if !ok || disk.ByIDPrefix+hint.ID != diskCID || !strings.HasPrefix(hint.Path, "/dev/vd") {
		t.Fatalf("after attach the config drive has no usable hint for %s: %+v", diskCID, hint)
	}
	waitForBoot(t, vmCID, 0)
	if _, run, err := v1.Call("detach_disk", vmCID, diskCID); err != nil {
		t.Fatalf("%v\n%s", err, run.Stderr)
	}
	if _, still := configDriveSettings(t, vmCID).Disks.Persistent[diskCID]; still {
		t.Fatal("after detach the config drive still names the disk")
	}
	mustCall(t, "delete_vm", vmCID)
	entries, _ := os.ReadDir(filepath.Join(suite.StoreDir, "vms"))
	if len(entries) != 0 {
		t.Fatalf("delete_vm left the saved settings: %v", entries)
	}
}

func TestUpdateDiskGrowsInPlace(t *testing.T) {
	diskCID := createDisk(t, 32, nil)
	got := resultString(t, mustCall(t, "update_disk", diskCID, 48, map[string]any{}))
	if got != diskCID {
		t.Fatalf("update_disk answered %q; want the same CID %q", got, diskCID)
	}
	out := mustVirsh(t, "vol-info", "--pool", suite.Pool, diskCID, "--bytes")
	if !strings.Contains(out, fmt.Sprint(48<<20)) {
		t.Fatalf("update_disk did not grow the volume to 48 MiB:\n%s", out)
	}
	wantError(t, call(t, "update_disk", diskCID, 64, map[string]any{"format": "raw"}), "NotSupported")
}
