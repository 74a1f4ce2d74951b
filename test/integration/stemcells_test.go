package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// TestBadStemcellsImportNothing: a stemcell the CPI cannot run is refused
// with a CloudError before anything is written to the pool.
func TestBadStemcellsImportNothing(t *testing.T) {
	qcow2 := map[string]any{"infrastructure": "openstack", "hypervisor": "kvm", "disk_format": "qcow2"}
	cases := []struct {
		name  string
		image func(dir string) error // writes dir/root.img, or leaves it out
		props map[string]any
		says  string
	}{
		{"qcow2 stemcell whose root.img is junk", writeJunk, qcow2, "no qcow2 header"},
		{"qcow2 naming a backing file on the host", func(dir string) error {
			return qemuImg("create", "-q", "-f", "qcow2", "-u", "-b", "/etc/passwd", "-F", "raw", filepath.Join(dir, "root.img"), "64M")
		}, qcow2, "names a backing file"},
		// A VM booted from it would read and write that host file as its disk.
		{"qcow2 keeping its data in a host file", func(dir string) error {
			return qemuImg("create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "host-disk.raw"), filepath.Join(dir, "root.img"), "64M")
		}, qcow2, "external data file"},
		{"vSphere stemcell", writeJunk, map[string]any{"infrastructure": "vsphere", "disk_format": "ovf"}, "not supported"},
		{"tarball without root.img", func(string) error { return nil }, qcow2, "no root.img"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tc.image(dir); err != nil {
				t.Fatal(err)
			}
			files := []string{writeReadme(t, dir)}
			if _, err := os.Stat(filepath.Join(dir, "root.img")); err == nil {
				files = append(files, filepath.Join(dir, "root.img"))
			}
			image := filepath.Join(dir, "image")
			if err := devenv.TarGz(image, files...); err != nil {
				t.Fatal(err)
			}
			res := call(t, "create_stemcell", image, tc.props)
			wantError(t, res, "CloudError")
			if !strings.Contains(res.Response.Error.Message, tc.says) {
				t.Errorf("error %q does not say %q", res.Response.Error.Message, tc.says)
			}
			assertNothingLeft(t)
		})
	}
}

func writeJunk(dir string) error {
	junk := make([]byte, 1<<20)
	rand.Read(junk)
	return os.WriteFile(filepath.Join(dir, "root.img"), junk, 0o644)
}

func writeReadme(t *testing.T, dir string) string {
	t.Helper()
	readme := filepath.Join(dir, "README")
	if err := os.WriteFile(readme, []byte("not a disk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return readme
}

func qemuImg(args ...string) error {
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img %v: %v: %s", args, err, out)
	}
	return nil
}
