package docker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// tlsDaemon serves the local dockerd's socket on 127.0.0.1 behind TLS that
// demands a client certificate signed by ca, as a dockerd started with
// --tlsverify does: a remote (tcp://) daemon for the runtime. It stops
// when the test ends.
func tlsDaemon(t *testing.T, socket string, ca *devenv.Authority) string {
	t.Helper()
	certPEM, keyPEM := issueCert(t, ca, "dockerd", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM([]byte(ca.CertPEM))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clients,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); pipeTo(conn, socket) }()
		}
	}()
	return "tcp://" + ln.Addr().String()
}

// pipeTo copies conn to and from a new connection to the unix socket
// until either side closes.
func pipeTo(conn net.Conn, socket string) {
	defer conn.Close()
	daemon, err := net.Dial("unix", socket)
	if err != nil {
		return
	}
	defer daemon.Close()
	done := make(chan struct{})
	go func() { io.Copy(daemon, conn); daemon.Close(); close(done) }()
	io.Copy(conn, daemon)
	conn.Close()
	<-done
}

func issueCert(t *testing.T, ca *devenv.Authority, name string, usage x509.ExtKeyUsage, ips ...net.IP) (string, string) {
	t.Helper()
	cert, key, err := ca.Issue(name, usage, ips...)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newRemoteEnv is a test environment whose runtime reaches the local
// dockerd as a tcp:// daemon over TLS with a client certificate.
func newRemoteEnv(t *testing.T) (e *testEnv, remote string, ca *devenv.Authority, trusted TLS) {
	t.Helper()
	socket, ok := strings.CutPrefix(dockerHost(t), "unix://")
	if !ok {
		t.Fatalf("%s must name the local daemon's unix socket for this test", HostEnv)
	}
	ca = newCA(t, "docker test CA")
	clientCert, clientKey := issueCert(t, ca, "cpi", x509.ExtKeyUsageClientAuth)
	remote = tlsDaemon(t, socket, ca)
	trusted = TLS{CACert: ca.CertPEM, ClientCert: clientCert, ClientKey: clientKey}
	e = newTestEnvWith(t, func(c *Config) { c.Host, c.TLS = remote, trusted })
	if e.r.local {
		t.Fatalf("%s taken for a local daemon", remote)
	}
	return e, remote, ca, trusted
}

func newCA(t *testing.T, name string) *devenv.Authority {
	t.Helper()
	ca, err := devenv.NewAuthority(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestRemoteDaemonOverTLS: with docker.host tcp:// and docker.tls the
// runtime works through the API alone: the stemcell is streamed in over
// TLS, the settings are copied into the container (no bind mount of a
// host file) and the agent reads them, the VM is deleted leaving nothing.
// A daemon
// certificate from another CA and a client certificate the daemon does
// not trust are refused at once, not answered as a retryable unreachable
// daemon.
func TestRemoteDaemonOverTLS(t *testing.T) {
	e, remote, ca, trusted := newRemoteEnv(t)

	sc := e.agentStemcell()
	spec := e.agentSpec(sc, "", nil, "")
	booted, err := e.r.createContainerVM(e.ctx, spec, agentSettings(spec, nil, "02:b0:5c:00:01:01"))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkAgentBoot(e, spec, booted); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteVM(e.ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	e.deleteStemcellLeavingNothing(sc)

	other := newCA(t, "another CA")
	strangerCert, strangerKey := issueCert(t, other, "stranger", x509.ExtKeyUsageClientAuth)
	for _, c := range []struct {
		name string
		tls  TLS
		want string
	}{
		{"a CA that did not sign the daemon's certificate", TLS{CACert: other.CertPEM, ClientCert: trusted.ClientCert, ClientKey: trusted.ClientKey}, "its TLS certificate is not accepted"},
		{"a client certificate the daemon does not trust", TLS{CACert: ca.CertPEM, ClientCert: strangerCert, ClientKey: strangerKey}, "refused the CPI's TLS client certificate"},
	} {
		r, err := Open(e.ctx, Config{Host: remote, TLS: c.tls}, testLogger(t))
		if err == nil {
			r.Close()
		}
		if err == nil || errors.Is(err, cpierr.ErrUnreachable) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), remote) {
			t.Errorf("%s: Open = %v; want a refusal naming %s and %q, not an unreachable daemon", c.name, err, remote, c.want)
		}
	}
}
