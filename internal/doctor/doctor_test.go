package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
)

func TestAccelerator(t *testing.T) {
	dir := t.TempDir()
	present := filepath.Join(dir, "kvm")
	os.WriteFile(present, nil, 0o600)
	cases := []struct {
		hypervisor, device string
		want               Status
	}{
		{"kvm", filepath.Join(dir, "missing"), Fail},
		{"auto", filepath.Join(dir, "missing"), Warn},
		{"qemu", filepath.Join(dir, "missing"), Warn},
		{"kvm", present, OK},
		{"auto", present, OK},
	}
	for _, tc := range cases {
		kvmDevice = tc.device
		got := checkAccelerator(config.Config{Hypervisor: tc.hypervisor})
		if got.Status != tc.want {
			t.Errorf("hypervisor %s, device %s: status %s; want %s (%s)", tc.hypervisor, tc.device, got.Status, tc.want, got.Detail)
		}
		if got.Status != OK && got.Fix == "" {
			t.Errorf("hypervisor %s: a %s finding without a fix", tc.hypervisor, got.Status)
		}
	}
}

func TestStoreDirNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; use a path under a regular file instead.
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o600)
		got := checkStoreDir(config.Config{StoreDir: filepath.Join(file, "store")})
		if got.Status != Fail || got.Fix == "" {
			t.Fatalf("store_dir under a file: %+v; want a failure with a fix", got)
		}
		return
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	if got := checkStoreDir(config.Config{StoreDir: dir}); got.Status != Fail {
		t.Fatalf("read-only store_dir: %+v; want a failure", got)
	}
}

func TestBlockedDirs(t *testing.T) {
	dir := t.TempDir()
	closed := filepath.Join(dir, "closed")
	pool := filepath.Join(closed, "pool")
	os.MkdirAll(pool, 0o755)
	os.Chmod(closed, 0o700)
	if !slices.Contains(BlockedDirs(pool), closed) {
		t.Fatalf("BlockedDirs(%s) = %v; want it to name %s", pool, BlockedDirs(pool), closed)
	}
	os.Chmod(closed, 0o711)
	if slices.Contains(BlockedDirs(pool), closed) {
		t.Fatalf("after chmod o+x, %s is still reported blocked", closed)
	}
}

func TestRunPrintAndFailed(t *testing.T) {
	kvmDevice = "/nonexistent/kvm"
	cfg := config.Config{Hypervisor: "kvm", StoreDir: t.TempDir()}
	probe := func(context.Context, config.Config) []Finding {
		return []Finding{{"libvirtd", Fail, "cannot connect", "libvirtd -d"}}
	}
	findings := Run(context.Background(), cfg, probe)
	if !Failed(findings) || len(findings) != 3 {
		t.Fatalf("findings = %+v; want 3 with a failure", findings)
	}
	var out bytes.Buffer
	Print(&out, findings)
	for _, want := range []string{"[ok  ] store_dir", "[FAIL] accelerator", "[FAIL] libvirtd: cannot connect", "fix: libvirtd -d"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
