// Package lxcsuite tests the libvirt runtime on libvirt's lxc driver
// against a real, private libvirtd that scripts/lxc-host.sh starts in
// namespaces of its own (see there why); guest truth comes from the
// project's test agent as the container's init (its output read from
// the container's root, see console).
package lxcsuite

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// The private daemon scripts/lxc-host.sh started, and its shared store.
const (
	uriEnv   = "BOSH_LIBVIRT_CPI_LXC_URI"
	storeEnv = "BOSH_LIBVIRT_CPI_LXC_STORE"
)

type testEnv struct {
	t    *testing.T
	ctx  context.Context
	cfg  config.Config
	b    *libvirt.Backend
	conn *golibvirt.Libvirt // the test's own view of the daemon
	log  *slog.Logger
}

// newTestEnv: a store directory and storage pool of this test's own on
// the private lxc libvirtd. Without the daemon the test fails: only
// scripts/lxc-host.sh run (scripts/test.sh does) can start it.
func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	uri, shared := os.Getenv(uriEnv), os.Getenv(storeEnv)
	if uri == "" || shared == "" {
		t.Fatalf("%s and %s are not set: run under scripts/lxc-host.sh run (scripts/test.sh does), which starts the private lxc libvirtd", uriEnv, storeEnv)
	}
	store, err := os.MkdirTemp(shared, "t")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, ctx: context.Background(), cfg: config.Config{
		Runtime:     config.RuntimeLibvirt,
		Hypervisor:  "auto",
		URI:         uri,
		StoreDir:    store,
		StoragePool: "cpi-lxc-" + randomHex(t, 4),
		// Short (libvirt loop-mounts disk images by paths of at most 63
		// bytes): <shared>/<store>p/<disk-cid>.
		PoolPath:      store + "p",
		Network:       "default",
		RebootTimeout: 5,
		Machine:       config.DefaultMachine,
		HotplugSlots:  config.DefaultHotplugSlots,
		Agent:         config.Agent{Mbus: "https://mbus:lxc-secret@0.0.0.0:6868"},
	}}
	e.log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	conn, _, err := host.Connect(e.ctx, config.Config{URI: uri})
	if err != nil {
		t.Fatalf("connecting to the lxc libvirtd at %s: %v", uri, err)
	}
	e.conn = conn
	t.Cleanup(func() { conn.Disconnect() })
	e.b = e.open()
	t.Cleanup(e.cleanup)
	return e
}

func (e *testEnv) open() *libvirt.Backend {
	e.t.Helper()
	b, err := libvirt.Open(e.ctx, e.cfg, e.log)
	if err != nil {
		e.t.Fatalf("opening the runtime at %s: %v", e.cfg.URI, err)
	}
	e.t.Cleanup(func() { b.Close() })
	return b
}

// cleanup removes this test's domains (those under its store), the pool
// and the store directory.
func (e *testEnv) cleanup() {
	doms, _, _ := e.conn.ConnectListAllDomains(1, 0)
	for _, dom := range doms {
		if _, err := os.Stat(filepath.Join(e.cfg.StoreDir, "lxc", "vms", dom.Name)); err != nil {
			continue
		}
		_ = e.conn.DomainDestroy(dom)
		_ = e.conn.DomainUndefine(dom)
	}
	entries, _ := os.ReadDir(filepath.Join(e.cfg.StoreDir, "lxc", "vms"))
	for _, d := range entries {
		root := filepath.Join(e.cfg.StoreDir, "lxc", "vms", d.Name(), "rootfs")
		_ = exec.Command("umount", root).Run()
	}
	if pool, err := e.conn.StoragePoolLookupByName(e.cfg.StoragePool); err == nil {
		vols, _, _ := e.conn.StoragePoolListAllVolumes(pool, 1, 0)
		for _, vol := range vols {
			_ = e.conn.StorageVolDelete(vol, 0)
		}
		_ = e.conn.StoragePoolDestroy(pool)
		_ = e.conn.StoragePoolUndefine(pool)
	}
	os.RemoveAll(e.cfg.StoreDir)
	os.RemoveAll(e.cfg.PoolPath)
}

// network defines and starts an isolated libvirt network (no forward,
// no DHCP) on 10.214.<n>.0/24 in the private daemon's network namespace,
// and returns its name and gateway.
func (e *testEnv) network(n int) (string, string) {
	e.t.Helper()
	suffix := randomHex(e.t, 3)
	name := "lxc-test-" + suffix
	gw := fmt.Sprintf("10.214.%d.1", n)
	doc := libvirtxml.Network{Name: name, Bridge: &libvirtxml.NetworkBridge{Name: "vbl" + suffix, STP: "off"},
		IPs: []libvirtxml.NetworkIP{{Address: gw, Netmask: "255.255.255.0"}}}
	xml, _ := doc.Marshal()
	net, err := e.conn.NetworkCreateXML(xml)
	if err != nil {
		e.t.Fatalf("creating network %s: %v", name, err)
	}
	e.t.Cleanup(func() { _ = e.conn.NetworkDestroy(net) })
	return name, gw
}

// importRootfs builds a warden stemcell image (a tgz of a root
// filesystem: busybox, the test agent as /sbin/init, and extra filler
// MiB) and imports it.
func (e *testEnv) importRootfs(fillerMiB int) string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "image")
	writeRootfsTgz(e.t, path, fillerMiB)
	img, err := stemcell.OpenFormats(path, stemcell.WardenFormats)
	if err != nil {
		e.t.Fatal(err)
	}
	defer img.Close()
	cid := stemcell.NewCID()
	if err := e.b.ImportStemcell(e.ctx, cid, img); err != nil {
		e.t.Fatalf("importing the rootfs stemcell: %v", err)
	}
	return cid
}

var agentOnce struct {
	sync.Once
	bin []byte
	err error
}

// testAgent is cmd/test-agent built static (no libc in the rootfs).
func testAgent(t *testing.T) []byte {
	t.Helper()
	agentOnce.Do(func() {
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		out := filepath.Join(os.TempDir(), fmt.Sprintf("lxc-test-agent-%d", os.Getpid()))
		cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, "../../../cmd/test-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			agentOnce.err = fmt.Errorf("building the test agent: %v: %s", err, msg)
			return
		}
		agentOnce.bin, agentOnce.err = os.ReadFile(out)
		os.Remove(out)
	})
	if agentOnce.err != nil {
		t.Fatal(agentOnce.err)
	}
	return agentOnce.bin
}

func writeRootfsTgz(t *testing.T, path string, fillerMiB int) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static (scripts/host.sh installs it): %v", err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	add := func(h *tar.Header, body []byte) {
		h.Size, h.ModTime = int64(len(body)), time.Now()
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	for _, d := range []string{"bin/", "sbin/", "etc/", "tmp/", "proc/", "sys/", "dev/", "var/", "var/log/", "var/vcap/", "usr/", "usr/share/"} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox"}, bb)
	for _, c := range []string{"sh", "cat", "ls", "ip", "sleep", "mount"} {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + c, Linkname: "busybox"}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "sbin/test-agent"}, testAgent(t))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "sbin/init"}, []byte("#!/bin/sh\nexec /sbin/test-agent >>"+agentLog+" 2>&1\n"))
	// Filler: many 1 MiB files of random bytes, as a real stemcell's
	// /usr holds many files that do not compress to nothing.
	chunk := make([]byte, 1<<20)
	for i := range fillerMiB {
		rand.Read(chunk)
		add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/share/filler-%04d", i), Mode: 0o644}, chunk)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

// console is the test agent's output: the test stemcell's /sbin/init
// runs the agent (as PID 1, by exec) with its stdout appended to
// agentLog in the container's root, which the test reads from the host
// through the container's root directory. (The container's console, read
// through virDomainOpenConsole, loses what init writes while no client
// holds it open: a pty whose slave closes is flushed.)
type console struct{ path string }

// agentLog is where the test stemcell's init sends the agent's output.
const agentLog = "/var/log/test-agent.log"

func (c *console) String() string {
	b, _ := os.ReadFile(c.path)
	return string(b)
}

// watchConsole is the agent output of container cid, across restarts.
func (e *testEnv) watchConsole(cid string) *console {
	return &console{path: filepath.Join(e.b.ContainerDir(cid), "rootfs", agentLog)}
}

// waitReport waits for a report from index from on that match accepts.
func waitReport(c *console, cid string, from int, timeout time.Duration, what string, match func(guestcheck.Report) bool) (guestcheck.Report, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		reports := guestcheck.ParseReports(c.String())
		for i := from; i < len(reports); i++ {
			if match(reports[i]) {
				return reports[i], i, nil
			}
		}
		if time.Now().After(deadline) {
			return guestcheck.Report{}, len(reports), fmt.Errorf("VM %s: no %s within %s; the agent reported:\n%s", cid, what, timeout, devenv.DescribeReports(reports))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// spec is a 1-CPU, 128 MiB container of stemcell sc with one manual
// network per (libvirt network, IP) pair.
func spec(sc string, nets ...[2]string) vm.Spec {
	cid := vm.NewCID()
	s := vm.Spec{CID: cid, AgentID: "agent-" + cid[3:11], StemcellCID: sc, Props: vm.Props{CPUs: 1, MemoryMiB: 128}}
	for i, n := range nets {
		s.NICs = append(s.NICs, vm.NIC{BOSHNetwork: fmt.Sprintf("net%d", i), LibvirtNetwork: n[0], IP: n[1]})
	}
	return s
}

// settingsFor: manual networks with netmask /24 and gateway .1 of each
// IP, the first one the default gateway.
func (e *testEnv) settingsFor(s vm.Spec, gateways ...string) agentsettings.Settings {
	st := agentsettings.New(s.AgentID, s.CID, e.cfg.Agent, nil)
	for i, nic := range s.NICs {
		n := agentsettings.Network{Type: "manual", IP: nic.IP, Netmask: "255.255.255.0", Gateway: gateways[i], DNS: []string{}, Default: []string{}}
		if i == 0 {
			n.Default = []string{"dns", "gateway"}
		}
		st.Networks[nic.BOSHNetwork] = n
	}
	return st
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

var _ = io.Discard
