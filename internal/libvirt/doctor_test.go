package libvirt

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
)

func TestProbeAgainstMissingDaemon(t *testing.T) {
	cfg := config.Config{URI: "qemu+unix:///system?socket=/nonexistent/libvirt-sock", Network: "default", StoragePool: "bosh", StoreDir: t.TempDir()}
	findings := Probe(context.Background(), cfg)
	if !doctor.Failed(findings) {
		t.Fatalf("a missing daemon must fail: %+v", findings)
	}
	if f := findings[0]; f.Check != "libvirtd" || !strings.Contains(f.Detail, "/nonexistent/libvirt-sock") || !strings.Contains(f.Fix, "libvirtd") {
		t.Fatalf("finding should name the socket and say how to start libvirtd: %+v", f)
	}
}

func TestProbeAgainstRealDaemon(t *testing.T) {
	uri := libvirtURI(t)
	cfg := config.Config{URI: uri, Hypervisor: "auto", Network: "doctor-test-missing-net", StoragePool: "doctor-test-missing-pool", StoreDir: t.TempDir()}
	os.Chmod(cfg.StoreDir, 0o755)
	findings := Probe(context.Background(), cfg)
	byCheck := map[string]doctor.Finding{}
	for _, f := range findings {
		byCheck[f.Check] = f
	}
	if byCheck["libvirtd"].Status != doctor.OK || byCheck["hypervisor"].Status != doctor.OK {
		t.Fatalf("libvirtd and hypervisor should be fine: %+v", findings)
	}
	if f := byCheck["network"]; f.Status != doctor.Fail || !strings.Contains(f.Fix, "net-start") {
		t.Fatalf("a missing network must fail with a fix: %+v", f)
	}
	if f := byCheck["storage_pool"]; f.Status != doctor.OK || !strings.Contains(f.Detail, "creates it") {
		t.Fatalf("a missing pool is created on first use: %+v", f)
	}
}
