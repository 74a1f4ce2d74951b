package suite

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
)

// cuttableProxy forwards a unix socket to libvirtd's and can drop every
// connection it carries at once, as a libvirtd restart does to its clients.
type cuttableProxy struct {
	listener net.Listener
	mu       sync.Mutex
	conns    []net.Conn
}

func startCuttableProxy(t *testing.T, target string) (*cuttableProxy, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "libvirt-proxy.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttableProxy{listener: l}
	t.Cleanup(func() { l.Close(); p.cut() })
	go p.serve(target)
	return p, path
}

func (p *cuttableProxy) serve(target string) {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("unix", target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(server, client); server.Close() }()
		go func() { _, _ = io.Copy(client, server); client.Close() }()
	}
}

// cut closes every connection made so far; new ones are still accepted.
func (p *cuttableProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A libvirtd that restarts during create_vm drops the CPI's connection
// after some of the VM's objects exist: the undo must reconnect and remove
// them, not fail on the dead connection and leave them for ever. Cut while
// the first volume is being made, and once the domain is defined.
func TestCreateVMUndoReconnectsAfterTheConnectionIsLost(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	scCID := e.importStemcell(1 << 30)
	netName := e.isolatedNetwork()
	u, err := url.Parse(e.cfg.URI)
	if err != nil {
		t.Fatal(err)
	}
	target, tried := host.LocalSocket(u)
	if target == "" {
		t.Fatalf("no local libvirt socket at %v", tried)
	}
	cases := []struct {
		name   string
		cutNow func(cid string) (string, bool)
	}{
		{"while its first volume is made", func(cid string) (string, bool) { return e.volumeOf(cid) }},
		{"once its domain is defined", func(cid string) (string, bool) {
			_, err := e.conn.DomainLookupByName(cid)
			return "domain " + cid, err == nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy, sock := startCuttableProxy(t, target)
			cfg := e.cfg
			cfg.URI = "qemu+unix:///system?socket=" + sock
			var logs bytes.Buffer
			b, err := libvirt.Open(ctx, cfg, slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			spec := e.vmSpec(scCID, netName)
			cutDone := make(chan string, 1)
			go func() { cutDone <- cutWhen(spec.CID, tc.cutNow, proxy) }()
			_, err = b.CreateVM(ctx, spec, e.settingsFor(spec))
			cutAt := <-cutDone
			if err == nil {
				e.trackDomain(spec.CID)
				t.Fatalf("CreateVM succeeded though its connection was cut (%s)", cutAt)
			}
			t.Logf("cut %s; CreateVM: %v", cutAt, err)
			e.assertNothingLeftOf(spec.CID)
			if !strings.Contains(logs.String(), "reconnected to libvirt") {
				t.Errorf("no reconnect logged:\n%s", logs.String())
			}
		})
	}
}

// cutWhen polls until cutNow says so, then cuts the proxy (bounded: 2
// minutes).
func cutWhen(cid string, cutNow func(string) (string, bool), proxy *cuttableProxy) string {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if what, now := cutNow(cid); now {
			proxy.cut()
			return "after " + what + " appeared"
		}
		time.Sleep(5 * time.Millisecond)
	}
	return "never: nothing of the VM appeared"
}

// volumeOf names a volume of the VM, if one exists (any goroutine).
func (e *testEnv) volumeOf(cid string) (string, bool) {
	pool, err := e.b.StoragePool(context.Background())
	if err != nil {
		return "", false
	}
	vols, _, err := e.conn.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		return "", false
	}
	for _, v := range vols {
		// The creation record comes first; a cut after a real volume
		// tests more of the undo.
		if strings.HasPrefix(v.Name, cid) && !strings.Contains(v.Name, ".creating-") {
			return "volume " + v.Name, true
		}
	}
	return "", false
}

// syncWriter serialises writes from the backend's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
