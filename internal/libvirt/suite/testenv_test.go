package suite

// Helpers for the suite against a real libvirtd. Each test gets
// its own storage pool (under its own store dir) and, when it asks, its
// own isolated libvirt network, and removes them when it ends. Nothing
// here touches an object it did not create.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// testEnv is one test's private corner of a real libvirtd.
type testEnv struct {
	t   *testing.T
	cfg config.Config
	// b is the runtime under test, on a connection of its own. Tests that
	// run calls in parallel open one each (OpenBackend), as separate CPI
	// processes would.
	b *libvirt.Backend
	// conn is the suite's own connection, to look at what the runtime did.
	conn    *golibvirt.Libvirt
	log     *slog.Logger
	domains []string // domain names to remove at the end, if still there
}

// libvirtURI returns the daemon to test against. Without one the test is
// skipped on a workstation, but fails in CI (CI=true): there the test
// command is expected to start libvirtd, and a silent skip would hide it.
func libvirtURI(t *testing.T) string {
	t.Helper()
	uri := os.Getenv(devenv.URIEnv)
	if uri == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set in CI: start libvirtd and set it (e.g. qemu:///system)", devenv.URIEnv)
		}
		t.Skipf("%s not set: skipping tests against a real libvirtd", devenv.URIEnv)
	}
	sweepOnce.Do(func() { devenv.SweepDeadRuns(uri) })
	return uri
}

// sweepOnce: what killed earlier runs left is removed before the first test.
var sweepOnce sync.Once

// newTestEnv connects to the daemon with a config whose storage pool and
// store dir belong to this test alone.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	uri := libvirtURI(t)
	store := traversableTempDir(t)
	e := &testEnv{t: t, cfg: config.Config{
		Hypervisor: "auto",
		URI:        uri,
		StoreDir:   store,
		// Named like devenv's runs (cpi-<name>-<pid>, files in
		// bosh-libvirt-cpi-<name>-<pid>-*) so a killed run is swept later.
		StoragePool:   fmt.Sprintf("cpi-lvtest%s-%d", randomHex(t, 4), os.Getpid()),
		PoolPath:      filepath.Join(store, "pool"),
		Network:       "default",
		RebootTimeout: 2,
		Machine:       config.DefaultMachine,
		HotplugSlots:  config.DefaultHotplugSlots,
		// The password lets tests check the settings never leak into
		// domain XML.
		Agent: config.Agent{Mbus: "https://mbus:config-drive-secret@0.0.0.0:6868"},
	}}
	e.log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	conn, _, err := host.Connect(context.Background(), config.Config{URI: uri})
	if err != nil {
		t.Fatalf("connecting to libvirtd at %s: %v", uri, err)
	}
	e.conn = conn
	t.Cleanup(func() { conn.Disconnect() }) // after cleanup, which needs it
	e.b = e.OpenBackend()
	t.Cleanup(e.cleanup)
	return e
}

// OpenBackend opens another connection with the env's config. A daemon
// that cannot be reached fails the test: the URI was set on purpose.
func (e *testEnv) OpenBackend() *libvirt.Backend {
	e.t.Helper()
	b, err := libvirt.Open(context.Background(), e.cfg, e.log)
	if err != nil {
		e.t.Fatalf("connecting to libvirtd at %s: %v", e.cfg.URI, err)
	}
	e.t.Cleanup(func() { b.Close() })
	return b
}

// traversableTempDir is a temp dir QEMU (running as its own user) can
// reach into: t.TempDir() is mode 0700.
func traversableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", fmt.Sprintf("bosh-libvirt-cpi-lvtest-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// trackDomain makes cleanup remove the domain if a test leaves it.
func (e *testEnv) trackDomain(name string) { e.domains = append(e.domains, name) }

// cleanup removes what this env made: tracked domains, then the pool
// with all its volumes. Failures are reported, not fatal, so every step
// runs.
func (e *testEnv) cleanup() {
	conn := e.conn
	for _, name := range e.domains {
		dom, err := conn.DomainLookupByName(name)
		if err != nil {
			continue
		}
		_ = conn.DomainDestroy(dom)
		if err := conn.DomainUndefineFlags(dom, golibvirt.DomainUndefineNvram|golibvirt.DomainUndefineSnapshotsMetadata); err != nil {
			e.t.Errorf("cleanup: undefining domain %s: %v", name, err)
		}
	}
	pool, err := conn.StoragePoolLookupByName(e.cfg.StoragePool)
	if err != nil {
		return // never created
	}
	vols, _, err := conn.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		e.t.Errorf("cleanup: listing volumes of pool %s: %v", e.cfg.StoragePool, err)
	}
	for _, vol := range vols {
		if err := conn.StorageVolDelete(vol, 0); err != nil {
			e.t.Errorf("cleanup: deleting volume %s: %v", vol.Name, err)
		}
	}
	_ = conn.StoragePoolDestroy(pool)
	if err := conn.StoragePoolUndefine(pool); err != nil {
		e.t.Errorf("cleanup: undefining pool %s: %v", e.cfg.StoragePool, err)
	}
}

// isolatedNetwork defines (but does not start) a libvirt network with no
// forwarding and no DHCP on a /24 nothing on this host uses, and removes
// it at the end. CreateVM is expected to start it.
func (e *testEnv) isolatedNetwork() string {
	e.t.Helper()
	conn := e.conn
	suffix := randomHex(e.t, 4)
	name := "bosh-test-net-" + suffix
	doc := libvirtxml.Network{
		Name:   name,
		Bridge: &libvirtxml.NetworkBridge{Name: "vbt" + suffix, STP: "off"},
		IPs:    []libvirtxml.NetworkIP{{Address: freeSubnetGateway(e.t, conn), Netmask: "255.255.255.0"}},
	}
	xml, err := doc.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	net, err := conn.NetworkDefineXML(xml)
	if err != nil {
		e.t.Fatalf("defining test network %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		_ = conn.NetworkDestroy(net)
		if err := conn.NetworkUndefine(net); err != nil {
			e.t.Errorf("cleanup: undefining network %s: %v", name, err)
		}
	})
	return name
}

// freeSubnetGateway picks 10.213.N.1 such that no host interface and no
// other libvirt network uses 10.213.N.0/24.
func freeSubnetGateway(t *testing.T, conn *golibvirt.Libvirt) string {
	t.Helper()
	used := hostSubnets(t, conn)
	for range 100 {
		n, err := rand.Int(rand.Reader, big.NewInt(250))
		if err != nil {
			t.Fatal(err)
		}
		prefix := fmt.Sprintf("10.213.%d.", n.Int64()+2)
		if !strings.Contains(used, prefix) {
			return prefix + "1"
		}
	}
	t.Fatal("no free 10.213.x.0/24 subnet for a test network")
	return ""
}

// hostSubnets returns host addresses and libvirt network XML as one text
// to search in.
func hostSubnets(t *testing.T, conn *golibvirt.Libvirt) string {
	var sb strings.Builder
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			sb.WriteString(a.String() + " ")
		}
	}
	nets, _, err := conn.ConnectListAllNetworks(1, 0)
	if err != nil {
		t.Fatalf("listing libvirt networks: %v", err)
	}
	for _, n := range nets {
		if doc, err := conn.NetworkGetXMLDesc(n, 0); err == nil {
			sb.WriteString(doc)
		}
	}
	return sb.String()
}

// stemcellImage opens a blank qcow2 stemcell of virtualSize bytes with
// stemcell.Open, the same path create_stemcell takes.
func stemcellImage(t *testing.T, virtualSize uint64) *stemcell.Image {
	t.Helper()
	path, err := devenv.BlankStemcellImage(t.TempDir(), fmt.Sprint(virtualSize))
	if err != nil {
		t.Fatal(err)
	}
	img, err := stemcell.Open(path)
	if err != nil {
		t.Fatalf("stemcell.Open: %v", err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// importStemcell imports a blank qcow2 stemcell and returns its CID.
func (e *testEnv) importStemcell(virtualSize uint64) string {
	e.t.Helper()
	cid := stemcell.NewCID()
	if err := e.b.ImportStemcell(context.Background(), cid, stemcellImage(e.t, virtualSize)); err != nil {
		e.t.Fatalf("ImportStemcell: %v", err)
	}
	return cid
}

// vmSpec is a small VM on the given networks.
func (e *testEnv) vmSpec(stemcellCID string, networks ...string) vm.Spec {
	e.t.Helper()
	spec := vm.Spec{
		CID:         vm.NewCID(),
		AgentID:     "agent-" + randomHex(e.t, 4),
		StemcellCID: stemcellCID,
		Props:       vm.Props{CPUs: 1, MemoryMiB: 128, EphemeralDiskMiB: 64},
	}
	for i, n := range networks {
		spec.NICs = append(spec.NICs, vm.NIC{BOSHNetwork: fmt.Sprintf("net%d", i), LibvirtNetwork: n})
	}
	e.trackDomain(spec.CID)
	return spec
}

// settingsFor are the agent settings the CPI layer would hand CreateVM for
// spec: a dynamic network for each NIC.
func (e *testEnv) settingsFor(spec vm.Spec) agentsettings.Settings {
	settings := agentsettings.New(spec.AgentID, spec.CID, e.cfg.Agent, nil)
	for _, nic := range spec.NICs {
		settings.Networks[nic.BOSHNetwork] = agentsettings.Network{Type: "dynamic", UseDHCP: true, DNS: []string{}, Default: []string{}}
	}
	return settings
}

// createVM creates spec's VM with b and records in spec what the runtime
// chose for it: each NIC's MAC, from the settings the agent gets.
func (e *testEnv) createVM(b *libvirt.Backend, spec *vm.Spec) error {
	settings, err := b.CreateVM(context.Background(), *spec, e.settingsFor(*spec))
	if err != nil {
		return err
	}
	for i, nic := range spec.NICs {
		spec.NICs[i].MAC = settings.Networks[nic.BOSHNetwork].MAC
	}
	return nil
}

// attach attaches the disk and returns its device target, from the hint's
// path.
func (e *testEnv) attach(ctx context.Context, vmCID, diskCID string) (string, error) {
	hint, err := e.b.AttachDisk(ctx, vmCID, diskCID)
	return strings.TrimPrefix(hint.Path, "/dev/"), err
}

// ownedDomain is the domain of a VM the runtime made; it fails the test
// when there is none or it lacks the runtime's marker.
func (e *testEnv) ownedDomain(cid string) (golibvirt.Domain, error) {
	dom, err := e.conn.DomainLookupByName(cid)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	if _, err := e.marker(dom); err != nil {
		return golibvirt.Domain{}, fmt.Errorf("domain %s carries no marker of the CPI: %w", cid, err)
	}
	return dom, nil
}

// marker is the runtime's ownership marker in dom's metadata.
func (e *testEnv) marker(dom golibvirt.Domain) (xmldef.Marker, error) {
	doc, err := e.conn.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement), golibvirt.OptString{xmldef.MetadataNS}, golibvirt.DomainAffectCurrent)
	if err != nil {
		return xmldef.Marker{}, err
	}
	return xmldef.ParseMarker(doc)
}

// isRunning tells whether dom has a QEMU process.
func (e *testEnv) isRunning(dom golibvirt.Domain) (bool, error) {
	active, err := e.conn.DomainIsActive(dom)
	return active == 1, err
}

// domainXMLOrError reads dom's definition (DomainXMLInactive: the next
// boot's).
func (e *testEnv) domainXMLOrError(dom golibvirt.Domain, flags golibvirt.DomainXMLFlags) (*libvirtxml.Domain, error) {
	doc, err := e.conn.DomainGetXMLDesc(dom, flags)
	if err != nil {
		return nil, err
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		return nil, err
	}
	return &def, nil
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testWriter sends backend logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// volumeNames lists the names of the volumes in the env's pool.
func (e *testEnv) volumeNames() []string {
	e.t.Helper()
	pool, err := e.b.StoragePool(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.conn.StoragePoolRefresh(pool, 0); err != nil {
		e.t.Fatalf("refreshing pool: %v", err)
	}
	vols, _, err := e.conn.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	names := make([]string, 0, len(vols))
	for _, v := range vols {
		names = append(names, v.Name)
	}
	return names
}

// assertNothingLeftOf fails when any domain, volume or console log of the
// VM cid still exists.
func (e *testEnv) assertNothingLeftOf(cid string) {
	e.t.Helper()
	if _, err := e.conn.DomainLookupByName(cid); err == nil {
		e.t.Errorf("domain %s is still defined", cid)
	}
	for _, name := range e.volumeNames() {
		if strings.HasPrefix(name, cid) {
			e.t.Errorf("volume %s is left behind", name)
		}
	}
	logPath := filepath.Join(e.cfg.ConsoleDir(), cid+".log")
	if _, err := os.Stat(logPath); !errors.Is(err, os.ErrNotExist) {
		e.t.Errorf("console log %s is left behind (stat: %v)", logPath, err)
	}
}
