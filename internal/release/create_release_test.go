package release

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseBuildsWithBoshCLIAndCompilesOffline is the release end to end:
// the real bosh CLI (tools/bosh-cli) creates the release tarball, its
// packages compile the way bosh compiles them (packaging run by bash with the
// BOSH_* variables) without any network, and the compiled CPI, started by the
// rendered bin/cpi with the rendered cpi.json, answers `info`.
//
// Slow the first time (it builds the bosh CLI and fetches the Go toolchain
// module through the Go proxy): -short skips it.
func TestReleaseBuildsWithBoshCLIAndCompilesOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the bosh CLI and compiles the release; skipped with -short")
	}
	root := repoRoot(t)
	work := t.TempDir()
	tarball := filepath.Join(work, "release.tgz")

	create := exec.Command(filepath.Join(root, "scripts", "create-release.sh"), tarball)
	create.Env = append(os.Environ(), "RELEASE_DIR="+filepath.Join(work, "release"))
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("scripts/create-release.sh: %v\n%s", err, out)
	}

	release := filepath.Join(work, "unpacked")
	extractTarball(t, tarball, release)
	wantFiles := map[string][]string{
		"packages/golang-1-linux.tgz": {"packaging", "golang-1-linux/go*.linux-amd64.tar.gz"},
		"packages/libvirt_cpi.tgz":    {"packaging", "go.mod", "go.sum", "cmd/cpi/main.go", "internal/config/config.go", "vendor/modules.txt"},
		"jobs/libvirt_cpi.tgz":        {"job.MF", "monit", "templates/cpi.erb", "templates/cpi.json.erb"},
	}
	for archive, files := range wantFiles {
		dir := filepath.Join(work, "archives", archive)
		extractTarball(t, filepath.Join(release, archive), dir)
		for _, file := range files {
			if found, _ := filepath.Glob(filepath.Join(dir, file)); len(found) == 0 {
				t.Errorf("%s lacks %s", archive, file)
			}
		}
	}
	if t.Failed() {
		return
	}

	packagesDir := filepath.Join(work, "packages")
	for _, pkg := range []string{"golang-1-linux", "libvirt_cpi"} {
		compilePackage(t, filepath.Join(work, "archives", "packages", pkg+".tgz"), packagesDir, pkg)
	}
	answerInfo(t, packagesDir, filepath.Join(work, "jobs"))
}

// compilePackage runs a package's packaging script as bosh's compiler does,
// in a network namespace of its own when the test may create one: the
// vendored sources must be enough.
func compilePackage(t *testing.T, sourceDir, packagesDir, name string) {
	t.Helper()
	install := filepath.Join(packagesDir, name)
	if err := os.MkdirAll(install, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"bash", "-x", "packaging"}
	if offlineCapable() {
		args = append([]string{"unshare", "--net"}, args...)
	} else {
		t.Log("unshare --net unavailable: compiling with the network reachable (GOPROXY=off still applies)")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = sourceDir
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(packagesDir, ".home"),
		"BOSH_COMPILE_TARGET=" + sourceDir,
		"BOSH_INSTALL_TARGET=" + install,
		"BOSH_PACKAGE_NAME=" + name,
		"BOSH_PACKAGES_DIR=" + packagesDir,
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compiling package %s: %v\n%s", name, err, tail(out, 4000))
	}
}

func offlineCapable() bool {
	return exec.Command("unshare", "--net", "true").Run() == nil
}

// answerInfo renders the job into jobsDir and calls the compiled CPI's info
// method through the rendered wrapper.
func answerInfo(t *testing.T, packagesDir, jobsDir string) {
	t.Helper()
	props := map[string]any{"agent": map[string]any{"mbus": testMbus}}
	for template, dest := range map[string]string{"cpi.erb": "bin/cpi", "cpi.json.erb": "config/cpi.json"} {
		rendered, err := renderTemplate(t, template, props)
		if err != nil {
			t.Fatalf("rendering %s: %v", template, err)
		}
		writeExecutable(t, filepath.Join(jobsDir, "libvirt_cpi", dest), rendered)
	}
	cmd := exec.Command(filepath.Join(jobsDir, "libvirt_cpi", "bin", "cpi"))
	cmd.Env = append(os.Environ(), "BOSH_PACKAGES_DIR="+packagesDir, "BOSH_JOBS_DIR="+jobsDir)
	cmd.Stdin = strings.NewReader(`{"method":"info","arguments":[],"context":{"director_uuid":"d"},"api_version":2}`)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("compiled CPI failed: %v\nstderr: %s", err, stderr.String())
	}
	var response struct {
		Result struct {
			StemcellFormats []string `json:"stemcell_formats"`
			APIVersion      int      `json:"api_version"`
		} `json:"result"`
		Error any `json:"error"`
	}
	if err := json.Unmarshal(out, &response); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, out)
	}
	if response.Error != nil || response.Result.APIVersion != 2 || len(response.Result.StemcellFormats) == 0 {
		t.Errorf("info answered %s", out)
	}
}

func extractTarball(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		target := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeFileFrom(target, tr, hdr.FileInfo().Mode().Perm())
		default:
			t.Fatalf("%s: unexpected entry %s of type %c", path, hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFileFrom(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return b[len(b)-n:]
}
