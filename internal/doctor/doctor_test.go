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
	cfg := config.Config{Hypervisor: "kvm", StoreDir: t.TempDir()}
	probe := func(context.Context, config.Config) []Finding {
		return []Finding{{"libvirtd", Fail, "cannot connect", "libvirtd -d"}}
	}
	findings := Run(context.Background(), cfg, probe)
	if !Failed(findings) || len(findings) != 2 {
		t.Fatalf("findings = %+v; want 2 with a failure", findings)
	}
	var out bytes.Buffer
	Print(&out, findings)
	for _, want := range []string{"[ok  ] store_dir", "[FAIL] libvirtd: cannot connect", "fix: libvirtd -d"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
