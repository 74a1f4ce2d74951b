// Package cpi is the CPI method layer: it validates what the director sends,
// takes cross-process locks, plans names, networks and agent settings, and
// calls a runtime through the interfaces in runtime.go. Device names, disk
// hints, MACs and settings delivery are the runtime's.
package cpi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudfoundry/bosh-cpi-go/apiv1"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/lock"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// callTimeout bounds one CPI call; stemcell imports of several GiB over a
// remote connection are the slowest thing we do.
const callTimeout = 60 * time.Minute

// Factory makes the CPI for one call; it satisfies apiv1.CPIFactory.
type Factory struct {
	cfg           config.Config
	log           *slog.Logger
	selectRuntime Selector

	mu      sync.Mutex
	runtime Runtime
}

// NewFactory returns a factory over cfg whose calls run on the runtime
// selectRuntime picks for each call's config.
func NewFactory(cfg config.Config, log *slog.Logger, selectRuntime Selector) *Factory {
	return &Factory{cfg: cfg, log: log, selectRuntime: selectRuntime}
}

// New satisfies apiv1.CPIFactory. Properties a director CPI config sets
// for this CPI arrive in the call's context and override cpi.json.
func (f *Factory) New(callCtx apiv1.CallContext) (apiv1.CPI, error) {
	// A context without a stemcell API version is API v1: Value answers 0.
	version, _ := apiv1.NewStemcellAPIVersion(callCtx).Value()
	var fields map[string]json.RawMessage
	_ = callCtx.As(&fields)
	cfg, err := f.cfg.WithContext(fields)
	if err != nil {
		return nil, cpierr.New(cpierr.TypeCpiError, err, "applying the call's context")
	}
	runtime, err := f.selectRuntime(cfg)
	if err != nil {
		return nil, cpierr.New(cpierr.TypeCpiError, err, "selecting the runtime")
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	return &CPI{
		cfg:                cfg,
		log:                f.log,
		ctx:                ctx,
		cancel:             cancel,
		locks:              lock.NewDir(cfg.LockDir()),
		factory:            f,
		descriptor:         runtime,
		stemcellAPIVersion: version,
	}, nil
}

// Close releases the runtime's connection, if one was opened.
func (f *Factory) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runtime == nil {
		return nil
	}
	err := f.runtime.Close()
	f.runtime = nil
	return err
}

// runtimeFor opens the call's runtime on first use; a process serves one
// call, so there is never a second one.
func (f *Factory) runtimeFor(ctx context.Context, d Descriptor) (Runtime, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runtime != nil {
		return f.runtime, nil
	}
	r, err := d.Open(ctx)
	if err != nil {
		return nil, err
	}
	f.runtime = r
	return r, nil
}

// CPI implements apiv1.CPI for one call.
type CPI struct {
	cfg        config.Config
	log        *slog.Logger
	ctx        context.Context
	cancel     context.CancelFunc
	locks      lock.Dir
	factory    *Factory
	descriptor Descriptor
	// stemcellAPIVersion comes from the call context; below 2 the agent
	// has no way to learn disk hints but its settings, so we rewrite them.
	stemcellAPIVersion int
}

var _ apiv1.CPI = (*CPI)(nil)

// Info satisfies apiv1.CPI; it needs no connection, so it stays fast.
func (c *CPI) Info() (apiv1.Info, error) {
	return apiv1.Info{StemcellFormats: c.descriptor.StemcellFormats}, nil
}

// openRuntime opens the runtime. An unreachable one is a CloudError whose
// message says where we tried, never NotImplemented; it is ok_to_retry, as
// a daemon that restarts (or a host that reboots) answers again soon and
// nothing was changed.
func (c *CPI) openRuntime() (Runtime, error) {
	b, err := c.factory.runtimeFor(c.ctx, c.descriptor)
	if err != nil {
		opening := cpierr.New(cpierr.TypeCloudError, err, "opening the %s runtime", c.descriptor.Name)
		if errors.Is(err, cpierr.ErrUnreachable) {
			opening = opening.Retryable()
		}
		return nil, opening
	}
	return b, nil
}

// withLocks runs fn holding the named cross-process locks, in order.
func (c *CPI) withLocks(names []string, fn func() error) error {
	var unlocks []func()
	defer func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}()
	for _, name := range names {
		unlock, err := c.locks.Lock(c.ctx, name)
		if err != nil {
			return cpierr.New(cpierr.TypeCloudError, err, "locking '%s'", name)
		}
		unlocks = append(unlocks, unlock)
	}
	return fn()
}

// flatten turns director metadata (string, number or bool values) into
// strings for labels and titles.
func flatten(kvs json.Marshaler) (map[string]string, error) {
	m, err := asMap(kvs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case nil:
			out[k] = ""
		default:
			b, _ := json.Marshal(v)
			out[k] = string(b)
		}
	}
	return out, nil
}

// asMap decodes a cloudKVs-like value into a generic map.
func asMap(kvs json.Marshaler) (map[string]any, error) {
	raw, err := kvs.MarshalJSON()
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if string(raw) == "null" {
		return m, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// objectKind describes a kind of CID for onObject.
type objectKind struct {
	name         string // "VM", "disk"
	valid        func(string) bool
	notFoundType string
}

var (
	vmKind   = objectKind{"VM", vm.ValidCID, cpierr.TypeVMNotFound}
	diskKind = objectKind{"disk", disk.ValidCID, cpierr.TypeDiskNotFound}
)

// onObject runs fn on an existing object under its lock. A CID of another
// shape never reaches the runtime, and a runtime not-found answers the
// kind's not-found type, so the director can tell "gone" from "failed".
func (c *CPI) onObject(kind objectKind, id, doing string, fn func(Runtime, string) error) error {
	if !kind.valid(id) {
		return cpierr.New(kind.notFoundType, nil, "%s '%s' not found", kind.name, id)
	}
	b, err := c.openRuntime()
	if err != nil {
		return err
	}
	return c.withLocks([]string{id}, func() error {
		err := fn(b, id)
		if errors.Is(err, cpierr.ErrNotFound) {
			return cpierr.New(kind.notFoundType, err, "%s %s '%s'", doing, kind.name, id)
		}
		return cpierr.Wrap(err, "%s %s '%s'", doing, kind.name, id)
	})
}
