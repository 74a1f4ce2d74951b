// Package libvirt is the runtime backend that runs BOSH VMs as libvirt
// domains (QEMU/KVM today). It is the only package that speaks to libvirt:
// RPC through go-libvirt, XML through libvirtxml.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/lock"
)

// MetadataNS marks libvirt objects this CPI created. A domain without our
// element in its <metadata> is never touched, whatever its name.
const (
	MetadataNS     = "https://github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/vm/1"
	MetadataPrefix = "boshcpi"
)

// dialTimeout bounds how long an unreachable libvirtd can stall a call.
const dialTimeout = 10 * time.Second

// Backend is one connection to libvirtd for the duration of one CPI call.
type Backend struct {
	conn    *golibvirt.Libvirt
	cfg     config.Config
	profile hypervisor.Profile
	log     *slog.Logger
	locks   lock.Dir
	pool    *golibvirt.StoragePool
	accel   *accelDecision // decided once per call, on first use
}

// Open connects to the libvirtd named by cfg.URI, for the hypervisor its
// driver part names.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*Backend, error) {
	profile, err := hypervisor.ForURI(cfg.URI)
	if err != nil {
		return nil, err
	}
	conn, via, err := connect(ctx, cfg.URI)
	if err != nil {
		return nil, err
	}
	log.Debug("connected to libvirt", "uri", cfg.URI, "via", via, "hypervisor", profile.Driver)
	return &Backend{
		conn:    conn,
		cfg:     cfg,
		profile: profile,
		log:     log,
		locks:   lock.NewDir(cfg.LockDir()),
	}, nil
}

// connect dials uri (qemu:///system, qemu:///session, qemu+unix:///system?socket=...,
// qemu+tcp://host/system, qemu+tls://..., qemu+ssh://...) and says what it
// dialled (a socket path for local URIs).
func connect(ctx context.Context, uri string) (*golibvirt.Libvirt, string, error) {
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
		conn, via, err := dial(ctx, parsed)
		done <- result{conn, via, err}
	}()
	// A session daemon may have to be started first.
	wait := dialTimeout + sessionDaemonWait
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
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

// domainType is the libvirt domain type for this host, decided from the
// connected host's capabilities and logged with its reason once per call.
func (b *Backend) domainType() (string, error) {
	if b.accel != nil {
		return b.accel.DomainType, nil
	}
	caps, err := hostCapabilities(b.conn)
	if err != nil {
		return "", err
	}
	d := decideDomainType(b.cfg.Hypervisor, caps)
	b.accel = &d
	b.log.Info("domain type decided", "domain_type", d.DomainType, "reason", d.Reason)
	return d.DomainType, nil
}

func hostCapabilities(conn *golibvirt.Libvirt) (libvirtxml.Caps, error) {
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

// Close ends the connection.
func (b *Backend) Close() error {
	if b.conn == nil {
		return nil
	}
	return b.conn.Disconnect()
}

// storagePool returns the configured pool, creating it as a directory pool
// under store_dir when it does not exist and starting it when inactive.
// Parallel calls race here on a fresh host, so creation is under a lock.
func (b *Backend) storagePool(ctx context.Context) (golibvirt.StoragePool, error) {
	if b.pool != nil {
		return *b.pool, nil
	}
	name := b.cfg.StoragePool
	pool, err := b.conn.StoragePoolLookupByName(name)
	if err == nil {
		if err := b.ensurePoolActive(pool); err != nil {
			return golibvirt.StoragePool{}, err
		}
		b.pool = &pool
		return pool, nil
	}
	if !isCode(err, golibvirt.ErrNoStoragePool) {
		return golibvirt.StoragePool{}, fmt.Errorf("looking up storage pool '%s': %w", name, err)
	}
	unlock, err := b.locks.Lock(ctx, "pool")
	if err != nil {
		return golibvirt.StoragePool{}, err
	}
	defer unlock()
	if pool, err = b.conn.StoragePoolLookupByName(name); err != nil {
		if pool, err = b.definePool(name); err != nil {
			return golibvirt.StoragePool{}, err
		}
	}
	if err := b.ensurePoolActive(pool); err != nil {
		return golibvirt.StoragePool{}, err
	}
	b.pool = &pool
	return pool, nil
}

// definePool defines a directory pool and has libvirtd build it, so the
// directory is made on the libvirt host, with the daemon's rights, whoever
// runs the CPI and wherever the host is.
func (b *Backend) definePool(name string) (golibvirt.StoragePool, error) {
	dir := b.cfg.PoolDir()
	doc := libvirtxml.StoragePool{
		Type: "dir",
		Name: name,
		// QEMU may run as its own user: the pool directory must be traversable.
		Target: &libvirtxml.StoragePoolTarget{Path: dir, Permissions: &libvirtxml.StoragePoolTargetPermissions{Mode: "0711"}},
	}
	xml, err := doc.Marshal()
	if err != nil {
		return golibvirt.StoragePool{}, fmt.Errorf("building XML for storage pool '%s': %w", name, err)
	}
	pool, err := b.conn.StoragePoolDefineXML(xml, 0)
	if err != nil {
		return golibvirt.StoragePool{}, fmt.Errorf("defining storage pool '%s' at '%s': %w", name, dir, err)
	}
	if err := b.conn.StoragePoolBuild(pool, 0); err != nil {
		if undefErr := b.conn.StoragePoolUndefine(pool); undefErr != nil {
			b.log.Warn("could not undefine the pool it failed to build", "pool", name, "error", undefErr)
		}
		return golibvirt.StoragePool{}, fmt.Errorf("building storage pool '%s' at '%s' on the libvirt host: %w", name, dir, err)
	}
	if err := b.conn.StoragePoolSetAutostart(pool, 1); err != nil {
		b.log.Warn("could not mark storage pool autostart", "pool", name, "error", err)
	}
	b.log.Info("created storage pool", "pool", name, "path", dir)
	return pool, nil
}

func (b *Backend) ensurePoolActive(pool golibvirt.StoragePool) error {
	active, err := b.conn.StoragePoolIsActive(pool)
	if err != nil {
		return fmt.Errorf("checking storage pool '%s': %w", pool.Name, err)
	}
	if active == 1 {
		return nil
	}
	err = b.conn.StoragePoolCreate(pool, 0)
	if err != nil && !isCode(err, golibvirt.ErrOperationInvalid) && b.isDirPool(pool) {
		// A directory pool whose directory went away (a cleaned home, a
		// wiped disk) starts again once libvirtd has made it anew.
		b.log.Warn("storage pool does not start; building its directory", "pool", pool.Name, "error", err)
		err = b.conn.StoragePoolCreate(pool, golibvirt.StoragePoolCreateWithBuild)
	}
	if err != nil && !isCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("starting storage pool '%s': %w", pool.Name, err)
	}
	return nil
}

// isDirPool: building is harmless only for directory pools (building other
// kinds formats disks or volume groups).
func (b *Backend) isDirPool(pool golibvirt.StoragePool) bool {
	raw, err := b.conn.StoragePoolGetXMLDesc(pool, 0)
	var doc libvirtxml.StoragePool
	return err == nil && doc.Unmarshal(raw) == nil && doc.Type == "dir"
}

// isCode tells whether err carries libvirt error number code.
func isCode(err error, code golibvirt.ErrorNumber) bool {
	var lerr golibvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}

// classify adds the cpierr sentinel that matches a libvirt error so the CPI
// layer can answer the director's error type; the libvirt message is kept.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case isCode(err, golibvirt.ErrNoDomain), isCode(err, golibvirt.ErrNoStorageVol):
		return fmt.Errorf("%w: %w", err, cpierr.ErrNotFound)
	case isCode(err, golibvirt.ErrConfigUnsupported):
		return fmt.Errorf("%w: %w", err, cpierr.ErrImpossible)
	case strings.Contains(err.Error(), "No space left on device"),
		strings.Contains(err.Error(), "Not enough space"),
		strings.Contains(err.Error(), "not enough space"):
		return fmt.Errorf("%w: %w", err, cpierr.ErrNoSpace)
	}
	return err
}
