// Package libvirt is the runtime that runs BOSH VMs as libvirt domains, on
// the hypervisor whose profile the URI's driver selects (QEMU/KVM today).
// It and its subpackages are the only code that speaks to libvirt: RPC
// through go-libvirt, XML through libvirtxml; package host reaches the
// daemon.
package libvirt

import (
	"context"
	"log/slog"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/lock"
)

// Backend is one connection to libvirtd for the duration of one CPI call.
type Backend struct {
	// Pool holds the VMs' and disks' volumes; its methods are the
	// runtime's volume operations.
	*storage.Pool
	conn    *golibvirt.Libvirt
	cfg     config.Config
	profile hypervisor.Profile
	log     *slog.Logger
	locks   lock.Dir
	accel   *host.DomainTypeDecision // decided once per call, on first use
	// orphanAge is the sweep's safe age; 0 is DefaultOrphanAge.
	orphanAge time.Duration
}

// Open connects to the libvirtd named by cfg.URI, for the hypervisor its
// driver part names.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*Backend, error) {
	profile, err := hypervisor.ForURI(cfg.URI)
	if err != nil {
		return nil, err
	}
	conn, via, err := host.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	log.Debug("connected to libvirt", "uri", cfg.URI, "via", via, "hypervisor", profile.Driver)
	if cfg.SSH != nil && cfg.SSH.InsecureIgnoreHostKey && cfg.Transport() == "ssh" {
		log.Warn("the libvirt host's SSH host key is not checked (ssh.insecure_ignore_host_key): anyone on the path can pose as the host", "uri", config.RedactURI(cfg.URI))
	}
	b := &Backend{
		Pool:    storage.New(conn, cfg, log),
		conn:    conn,
		cfg:     cfg,
		profile: profile,
		log:     log,
		locks:   lock.NewDir(cfg.LockDir()),
	}
	// An undo that had to reconnect leaves the new connection to both.
	b.OnReconnect(func(conn *golibvirt.Libvirt) { b.conn = conn })
	return b, nil
}

// domainType is the libvirt domain type for this host: the profile's own
// (lxc, vbox, xen, vmware), or for QEMU decided from the connected host's
// capabilities and logged with its reason once per call.
func (b *Backend) domainType() (string, error) {
	if b.profile.DomainType != "" {
		return b.profile.DomainType, nil
	}
	if b.accel != nil {
		return b.accel.DomainType, nil
	}
	caps, err := host.Capabilities(b.conn)
	if err != nil {
		return "", err
	}
	d := host.DecideDomainType(b.cfg.Hypervisor, caps)
	b.accel = &d
	b.log.Info("domain type decided", "domain_type", d.DomainType, "reason", d.Reason)
	return d.DomainType, nil
}

// Close ends the connection.
func (b *Backend) Close() error {
	if b.conn == nil {
		return nil
	}
	return b.conn.Disconnect()
}
