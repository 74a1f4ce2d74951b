// Package tlsrefusal tells, from a failed TLS dial to a remote daemon
// (libvirtd over qemu+tls, dockerd over tcp with TLS), which side refused
// the other's certificate. A refusal is a configuration problem: retrying
// cannot help, unlike a daemon that does not answer.
package tlsrefusal

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"strings"
)

// Side is who refused.
type Side int

const (
	// None: the error is no certificate refusal.
	None Side = iota
	// ServerRefused: the CPI did not accept the daemon's certificate
	// (another CA, expired, or not naming the host dialled).
	ServerRefused
	// ClientRefused: the daemon did not accept the CPI's client
	// certificate. With TLS 1.3 the client's handshake ends before the
	// server checks the client certificate, so that refusal shows as the
	// server's alert or as the connection closed right after the handshake.
	ClientRefused
)

// Of classifies err, the failure of a connection made over TLS.
func Of(err error) Side {
	if err == nil {
		return None
	}
	var verification *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &verification), errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return ServerRefused
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "remote error: tls:"),
		strings.Contains(err.Error(), "server verification (of our certificate"):
		return ClientRefused
	}
	return None
}
