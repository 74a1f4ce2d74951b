package host

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
)

// noDriver is libvirtd's answer to a URI whose driver it does not have.
const noDriver = "no connection driver available"

// dialTimeout bounds how long an unreachable libvirtd can stall a call.
const dialTimeout = 10 * time.Second

// Connect dials uri (qemu:///system, qemu:///session, qemu+unix:///system?socket=...,
// qemu+tcp://host/system, qemu+tls://..., qemu+ssh://...) and says what it
// dialled (a socket path for local URIs).
func Connect(ctx context.Context, cfg config.Config) (*golibvirt.Libvirt, string, error) {
	uri := cfg.URI
	parsed, err := url.Parse(uri)
	if err != nil {
		return nil, "", fmt.Errorf("parsing libvirt URI '%s': %w", uri, err)
	}
	type result struct {
		conn *golibvirt.Libvirt
		via  string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, via, err := dial(ctx, parsed, cfg)
		done <- result{conn, via, err}
	}()
	// A session daemon may have to be started first.
	wait := dialTimeout + sessionDaemonWait
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil && strings.Contains(r.err.Error(), noDriver) {
			// libvirtd answers, but lacks the driver (vbox, libxl not
			// installed): no retry helps.
			return nil, "", fmt.Errorf("connecting to libvirt at '%s': libvirtd has no driver for it: %w: %w", uri, r.err, cpierr.ErrNotSupported)
		}
		if problem := tlsRefusal(cfg, r.err); problem != "" {
			// The certificates are wrong: the same ones fail the same way
			// on every retry, so this is not ErrUnreachable.
			return nil, "", fmt.Errorf("connecting to libvirt at '%s': %s: %w", uri, problem, r.err)
		}
		if r.err != nil {
			return nil, "", fmt.Errorf("connecting to libvirt at '%s'%s: %w: %w", uri, accessHint(r.err), r.err, cpierr.ErrUnreachable)
		}
		return r.conn, r.via, nil
	case <-timer.C:
		return nil, "", fmt.Errorf("connecting to libvirt at '%s': no answer within %s: %w", uri, wait, cpierr.ErrUnreachable)
	case <-ctx.Done():
		return nil, "", fmt.Errorf("connecting to libvirt at '%s': %w", uri, ctx.Err())
	}
}

// accessHint says, for the two ways a non-root user is refused by the
// system daemon, what admits them.
func accessHint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "system bus"):
		return " (libvirtd asks polkit to admit this user, and there is no system bus: without systemd, start libvirtd with auth_unix_rw = \"none\" and unix_sock_group = \"libvirt\" as scripts/host.sh does, and add the user to group libvirt)"
	case strings.Contains(msg, "permission denied"):
		return " (the socket does not admit this user: add it to the socket's group, usually libvirt, and log in again)"
	}
	return " (is libvirtd running and its socket readable?)"
}

func Capabilities(conn *golibvirt.Libvirt) (libvirtxml.Caps, error) {
	var caps libvirtxml.Caps
	raw, err := conn.ConnectGetCapabilities()
	if err != nil {
		return caps, fmt.Errorf("reading the libvirt host's capabilities: %w", err)
	}
	if err := caps.Unmarshal(raw); err != nil {
		return caps, fmt.Errorf("parsing the libvirt host's capabilities: %w", err)
	}
	return caps, nil
}

// IsCode tells whether err carries libvirt error number code.
func IsCode(err error, code golibvirt.ErrorNumber) bool {
	var lerr golibvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}

// Classify adds the cpierr sentinel that matches a libvirt error so the CPI
// layer can answer the director's error type; the libvirt message is kept.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case IsCode(err, golibvirt.ErrNoDomain), IsCode(err, golibvirt.ErrNoStorageVol):
		return fmt.Errorf("%w: %w", err, cpierr.ErrNotFound)
	case IsCode(err, golibvirt.ErrConfigUnsupported):
		return fmt.Errorf("%w: %w", err, cpierr.ErrImpossible)
	case strings.Contains(err.Error(), "No space left on device"),
		strings.Contains(err.Error(), "Not enough space"),
		strings.Contains(err.Error(), "not enough space"):
		return fmt.Errorf("%w: %w", err, cpierr.ErrNoSpace)
	}
	return err
}
