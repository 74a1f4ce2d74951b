package host

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
)

// TestTLSRefusal: certificate problems of a qemu+tls:// dial are named (so
// they are not answered as a retryable unreachable daemon); other dial
// errors, and any error of another transport, are not.
func TestTLSRefusal(t *testing.T) {
	tlsCfg := config.Config{URI: "qemu+tls://h.example/system"}
	cases := []struct {
		name string
		cfg  config.Config
		err  error
		want string
	}{
		{"unknown CA", tlsCfg, fmt.Errorf("tls h.example: %w", x509.UnknownAuthorityError{}), "libvirtd's TLS certificate is not accepted"},
		{"wrong host name", tlsCfg, fmt.Errorf("tls h.example: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h.example"}), "libvirtd's TLS certificate is not accepted"},
		{"closed after the handshake", tlsCfg, fmt.Errorf("tls h.example: %w", io.EOF), "refused the CPI's TLS client certificate"},
		{"server alert", tlsCfg, errors.New("tls h.example: remote error: tls: bad certificate"), "refused the CPI's TLS client certificate"},
		{"connection refused", tlsCfg, errors.New("tls h.example: dial tcp: connect: connection refused"), ""},
		{"EOF over ssh", config.Config{URI: "qemu+ssh://h.example/system"}, io.EOF, ""},
		{"no error", tlsCfg, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := tlsRefusal(c.cfg, c.err)
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("tlsRefusal(%v) = %q; want one containing %q", c.err, got, c.want)
			}
		})
	}
}
