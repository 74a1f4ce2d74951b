package tlsrefusal

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want Side
	}{
		{"unknown CA", fmt.Errorf("dial: %w", x509.UnknownAuthorityError{}), ServerRefused},
		{"wrong host name", fmt.Errorf("dial: %w", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}), ServerRefused},
		{"expired", fmt.Errorf("dial: %w", x509.CertificateInvalidError{Reason: x509.Expired}), ServerRefused},
		{"closed right after the handshake", fmt.Errorf("read: %w", io.EOF), ClientRefused},
		{"the server's alert", errors.New(`Head "https://h/_ping": remote error: tls: certificate required`), ClientRefused},
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), None},
		{"no error", nil, None},
	}
	for _, c := range cases {
		if got := Of(c.err); got != c.want {
			t.Errorf("%s: Of(%v) = %d; want %d", c.name, c.err, got, c.want)
		}
	}
}
