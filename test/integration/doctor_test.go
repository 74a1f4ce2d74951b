package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runDoctor runs `cpi doctor` with the config at path.
func runDoctor(t *testing.T, path string) (string, int) {
	t.Helper()
	out, err := exec.Command(suite.Client.Binary, "doctor", "-configPath", path).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestDoctorOnThisHost(t *testing.T) {
	out, code := runDoctor(t, suite.Client.ConfigPath)
	if code != 0 || !strings.Contains(out, "[ok  ] libvirtd") || !strings.Contains(out, "[ok  ] network") {
		t.Fatalf("doctor on a ready host: exit %d\n%s", code, out)
	}
}

func TestDoctorFindsProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpi.json")
	suite.WriteConfig(path, map[string]any{"uri": "qemu+unix:///system?socket=/nonexistent/libvirt-sock"})
	out, code := runDoctor(t, path)
	if code == 0 || !strings.Contains(out, "[FAIL] libvirtd") || !strings.Contains(out, "fix: ") {
		t.Fatalf("doctor without a daemon: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
		t.Fatalf("doctor printed a stack trace:\n%s", out)
	}

	suite.WriteConfig(path, map[string]any{"network": "no-such-network"})
	out, code = runDoctor(t, path)
	if code == 0 || !strings.Contains(out, "[FAIL] network") || !strings.Contains(out, "net-start") {
		t.Fatalf("doctor with a missing network: exit %d\n%s", code, out)
	}

	os.WriteFile(path, []byte(`{"hypervisor":"hyperv","agent":{"mbus":"https://h"}}`), 0o600)
	out, code = runDoctor(t, path)
	if code == 0 || !strings.Contains(out, "hypervisor") {
		t.Fatalf("doctor with a broken config: exit %d\n%s", code, out)
	}
}
