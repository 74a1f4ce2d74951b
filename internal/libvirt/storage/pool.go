// Package storage is the libvirt storage pool the CPI keeps its volumes in:
// the pool itself (made and started when missing), volumes and their
// streams, stemcell uploads, free space, and the metadata sidecars of
// disks and snapshots.
package storage

import (
	"context"
	"fmt"
	"log/slog"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/lock"
)

// Pool is the configured storage pool of one connection: every volume the
// CPI makes lives there and is reached through libvirt's storage API only,
// so a remote libvirtd works like a local one.
type Pool struct {
	conn  *golibvirt.Libvirt
	cfg   config.Config
	log   *slog.Logger
	locks lock.Dir
	pool  *golibvirt.StoragePool // looked up (or made) once, on first use
	// onReconnect is told of a new connection ReconnectIfLost made.
	onReconnect func(*golibvirt.Libvirt)
}

// New is the pool cfg names, on conn; nothing is looked up yet.
func New(conn *golibvirt.Libvirt, cfg config.Config, log *slog.Logger) *Pool {
	return &Pool{conn: conn, cfg: cfg, log: log, locks: lock.NewDir(cfg.LockDir())}
}

// StoragePool returns the configured pool, creating it as a directory pool
// under store_dir when it does not exist and starting it when inactive.
// Parallel calls race here on a fresh host, so creation is under a lock.
func (b *Pool) StoragePool(ctx context.Context) (golibvirt.StoragePool, error) {
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
	if !host.IsCode(err, golibvirt.ErrNoStoragePool) {
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
func (b *Pool) definePool(name string) (golibvirt.StoragePool, error) {
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

func (b *Pool) ensurePoolActive(pool golibvirt.StoragePool) error {
	active, err := b.conn.StoragePoolIsActive(pool)
	if err != nil {
		return fmt.Errorf("checking storage pool '%s': %w", pool.Name, err)
	}
	if active == 1 {
		return nil
	}
	err = b.conn.StoragePoolCreate(pool, 0)
	if err != nil && !host.IsCode(err, golibvirt.ErrOperationInvalid) && b.isDirPool(pool) {
		// A directory pool whose directory went away (a cleaned home, a
		// wiped disk) starts again once libvirtd has made it anew.
		b.log.Warn("storage pool does not start; building its directory", "pool", pool.Name, "error", err)
		err = b.conn.StoragePoolCreate(pool, golibvirt.StoragePoolCreateWithBuild)
	}
	if err != nil && !host.IsCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("starting storage pool '%s': %w", pool.Name, err)
	}
	return nil
}

// isDirPool: building is harmless only for directory pools (building other
// kinds formats disks or volume groups).
func (b *Pool) isDirPool(pool golibvirt.StoragePool) bool {
	raw, err := b.conn.StoragePoolGetXMLDesc(pool, 0)
	var doc libvirtxml.StoragePool
	return err == nil && doc.Unmarshal(raw) == nil && doc.Type == "dir"
}
