// Package release tests the BOSH release around the CPI binary: the job's
// templates against internal/config, the package specs against the Go
// sources, and the whole release against the real bosh CLI.
package release

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func jobPath(t *testing.T, parts ...string) string {
	return filepath.Join(append([]string{repoRoot(t), "jobs", "libvirt_cpi"}, parts...)...)
}

// requireRuby fails (never skips) without ruby: the director and bosh
// create-env render job templates with it, so these tests need it too.
func requireRuby(t *testing.T) string {
	t.Helper()
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Fatal("ruby is required to render the job templates (Debian: apt-get install ruby); scripts/host.sh install provides it")
	}
	return ruby
}

// renderTemplate renders a template of the libvirt_cpi job with the given
// manifest properties through testdata/render.rb.
func renderTemplate(t *testing.T, template string, properties map[string]any) (string, error) {
	t.Helper()
	ruby := requireRuby(t)
	raw, err := json.Marshal(properties)
	if err != nil {
		t.Fatalf("encoding properties: %v", err)
	}
	propsPath := filepath.Join(t.TempDir(), "properties.json")
	if err := os.WriteFile(propsPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ruby, filepath.Join("testdata", "render.rb"),
		jobPath(t, "spec"), jobPath(t, "templates", template), propsPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &renderError{err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return stdout.String(), nil
}

type renderError struct {
	err    error
	stderr string
}

func (e *renderError) Error() string { return e.err.Error() + ": " + e.stderr }

// readYAML decodes the YAML file at path into into.
func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("decoding YAML %s: %v", path, err)
	}
}
