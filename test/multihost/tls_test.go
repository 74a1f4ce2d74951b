package multihost

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// tlsHostAddr is where the CPI dials the TLS host: its libvirtd listens
// in its own network namespace, whose loopback only the CPI run there sees.
const tlsHostAddr = "127.0.0.1"

func newAuthority(t *testing.T, name string) *devenv.Authority {
	t.Helper()
	ca, err := devenv.NewAuthority(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue signs a leaf certificate for a server (with its IP) or a client;
// it answers the certificate and key as PEM.
func issue(t *testing.T, ca *devenv.Authority, name string, usage x509.ExtKeyUsage, ips ...net.IP) (string, string) {
	t.Helper()
	cert, key, err := ca.Issue(name, usage, ips...)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// writeServerPKI writes libvirtd's CA, certificate and key (0600) into a
// temporary directory the test removes.
func writeServerPKI(t *testing.T, ca *devenv.Authority, cert, key string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"cacert.pem": ca.CertPEM, "servercert.pem": cert, "serverkey.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tlsClient is z's client dialing its libvirtd over qemu+tls with the
// given PEMs in the context, run in the host's network namespace.
func tlsClient(z *az, caPEM, certPEM, keyPEM string) cpiclient.Client {
	c := z.env.Client
	c.As = z.host.inNetNamespace()
	c.Context = map[string]any{
		"uri": "qemu+tls://" + tlsHostAddr + "/system", "storage_pool": z.env.Pool,
		"pool_path": filepath.Join(z.env.StoreDir, "pool"), "network": z.env.Network,
		"tls": map[string]any{"ca_cert": caPEM, "client_cert": certPEM, "client_key": keyPEM},
	}
	return c
}

// TestQemuTLS: a private libvirtd listening on TLS with client certificates
// checked serves the CPI's calls over qemu+tls://; a CA that did not sign
// the server's certificate, and a client certificate its CA did not sign,
// are refused at once with an error naming the host and the problem.
func TestQemuTLS(t *testing.T) {
	requireTools(t)
	ca := newAuthority(t, "bosh-libvirt-cpi test CA")
	serverCert, serverKey := issue(t, ca, "mht libvirtd", x509.ExtKeyUsageServerAuth, net.ParseIP(tlsHostAddr))
	clientCert, clientKey := issue(t, ca, "mht cpi", x509.ExtKeyUsageClientAuth)
	z := startAZ(t, "mht", "10.252.3.1", writeServerPKI(t, ca, serverCert, serverKey))

	// Its only network listener is TLS: plain TCP (16509) is not served.
	tcp := append(z.host.inNetNamespace(), "virsh", "-c", "qemu+tcp://"+tlsHostAddr+"/system", "version")
	if out, err := exec.Command(tcp[0], tcp[1:]...).CombinedOutput(); err == nil || !strings.Contains(string(out), "Connection refused") {
		t.Fatalf("plain qemu+tcp:// to the TLS host = %v; want its port refused:\n%s", err, out)
	}
	z.client = tlsClient(z, ca.CertPEM, clientCert, clientKey)
	// A disk CID of this host, gone by the refusals: has_disk must dial to answer.
	var disk string
	t.Run("the CPI's calls succeed over TLS", func(t *testing.T) {
		mustCall(t, z, "info")
		image, err := devenv.BlankStemcellImage(t.TempDir(), "1G")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		sc := callAs[string](t, z, "create_stemcell", image, map[string]any{})
		fmt.Printf("FIGURE qemu+tls: create_stemcell (1 GiB blank image) took %s\n", time.Since(start).Round(time.Millisecond))
		disk = callAs[string](t, z, "create_disk", 32, map[string]any{}, nil)
		if !callAs[bool](t, z, "has_disk", disk) {
			t.Errorf("has_disk %s over TLS = false right after create_disk", disk)
		}
		mustCall(t, z, "delete_disk", disk)
		if callAs[bool](t, z, "has_disk", disk) {
			t.Errorf("has_disk %s over TLS = true after delete_disk", disk)
		}
		mustCall(t, z, "delete_stemcell", sc)
		vols, err := z.env.Volumes()
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vols {
			if v == sc || v == disk {
				t.Errorf("the pool still holds %s after its delete call over TLS", v)
			}
		}
	})

	otherCA := newAuthority(t, "bosh-libvirt-cpi other CA")
	untrustedCert, untrustedKey := issue(t, otherCA, "mht stranger", x509.ExtKeyUsageClientAuth)
	refusals := []struct {
		name          string
		client        cpiclient.Client
		wantInMessage string
	}{
		{"a CA that did not sign the server's certificate", tlsClient(z, otherCA.CertPEM, clientCert, clientKey), "libvirtd's TLS certificate is not accepted"},
		{"a client certificate the server does not trust", tlsClient(z, ca.CertPEM, untrustedCert, untrustedKey), "libvirtd refused the CPI's TLS client certificate"},
	}
	for _, r := range refusals {
		t.Run(r.name+" is refused", func(t *testing.T) {
			start := time.Now()
			_, run, err := r.client.Call("has_disk", disk)
			took := time.Since(start).Round(time.Millisecond)
			var cpiErr *cpiclient.Error
			if !errors.As(err, &cpiErr) {
				t.Fatalf("has_disk with %s = %v; want a CPI error\n%s", r.name, err, run.Stderr)
			}
			fmt.Printf("FIGURE qemu+tls refusal (%s): %s ok_to_retry=%v in %s: %s\n", r.name, cpiErr.Type, cpiErr.OkToRetry, took, cpiErr.Message)
			if !strings.Contains(cpiErr.Message, tlsHostAddr) {
				t.Errorf("the refusal does not name the host %s: %s", tlsHostAddr, cpiErr.Message)
			}
			if !strings.Contains(cpiErr.Message, r.wantInMessage) {
				t.Errorf("the refusal does not say %q: %s", r.wantInMessage, cpiErr.Message)
			}
			// The same certificates fail the same way again: BOSH must
			// not retry.
			if cpiErr.Type != "Bosh::Clouds::CloudError" || cpiErr.OkToRetry {
				t.Errorf("the refusal is %s ok_to_retry=%v; want a CloudError without ok_to_retry", cpiErr.Type, cpiErr.OkToRetry)
			}
			if took > 60*time.Second {
				t.Errorf("the refusal took %s: retried instead of failing", took)
			}
		})
	}
}
