package host

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
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
	uri := daemonURI(t)
	cfg := config.Config{URI: uri, Hypervisor: "auto", Network: "doctor-test-missing-net", StoragePool: "doctor-test-missing-pool", StoreDir: t.TempDir()}
	os.Chmod(cfg.StoreDir, 0o755)
	findings := Probe(context.Background(), cfg)
	byCheck := map[string]doctor.Finding{}
	for _, f := range findings {
		byCheck[f.Check] = f
	}
	// On a host without working KVM, auto is a warning (TCG), never a failure.
	if byCheck["libvirtd"].Status != doctor.OK || byCheck["hypervisor"].Status == doctor.Fail {
		t.Fatalf("libvirtd and hypervisor should be usable: %+v", findings)
	}
	if f := byCheck["network"]; f.Status != doctor.Fail || !strings.Contains(f.Fix, "net-start") {
		t.Fatalf("a missing network must fail with a fix: %+v", f)
	}
	if f := byCheck["storage_pool"]; f.Status != doctor.OK || !strings.Contains(f.Detail, "creates it") {
		t.Fatalf("a missing pool is created on first use: %+v", f)
	}
}

// TestProbeFailsKVMWhereKVMCannotRun: on a host whose CPU lacks vmx/svm
// (as this project's CI machines), asking for kvm is a doctor failure.
func TestProbeFailsKVMWhereKVMCannotRun(t *testing.T) {
	uri := daemonURI(t)
	conn, _, err := Connect(context.Background(), config.Config{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	caps, err := Capabilities(conn)
	conn.Disconnect()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{URI: uri, Hypervisor: "kvm", Network: "default", StoragePool: "bosh", StoreDir: t.TempDir()}
	f := checkDomainTypeFinding(t, cfg)
	switch d := DecideDomainType("auto", caps); {
	case d.DomainType == "kvm" && f.Status != doctor.OK:
		t.Fatalf("kvm works on this host, but doctor says %+v", f)
	case d.DomainType == "qemu" && f.Status != doctor.Fail:
		t.Fatalf("kvm cannot run guests on this host (%s), but doctor says %+v", d.Reason, f)
	}
}

func checkDomainTypeFinding(t *testing.T, cfg config.Config) doctor.Finding {
	t.Helper()
	for _, f := range Probe(context.Background(), cfg) {
		if f.Check == "hypervisor" {
			return f
		}
	}
	t.Fatal("no hypervisor finding")
	return doctor.Finding{}
}

// daemonURI is the libvirtd the probes run against; without one they are
// skipped, but not in CI.
func daemonURI(t *testing.T) string {
	t.Helper()
	uri, run, err := devenv.SuiteURI("host probes")
	if err != nil {
		t.Fatal(err)
	}
	if !run {
		t.Skip("no libvirtd to probe")
	}
	return uri
}
