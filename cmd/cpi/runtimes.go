package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpi"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
)

// runtimeSelector is the one place that names every runtime: it picks the
// one a call's config names, connecting to nothing.
func runtimeSelector(log *slog.Logger) cpi.Selector {
	return func(cfg config.Config) (cpi.Descriptor, error) {
		switch cfg.Runtime {
		case config.RuntimeLibvirt:
			return libvirtRuntime(cfg, log)
		}
		// config.Validate refuses other values; a new one must be added here.
		return cpi.Descriptor{}, fmt.Errorf("key 'runtime': '%s' has no runtime in this build", cfg.Runtime)
	}
}

// libvirtRuntime runs VMs through libvirt on the hypervisor the URI's
// driver names; a driver without a profile is refused here, so even info
// answers it.
func libvirtRuntime(cfg config.Config, log *slog.Logger) (cpi.Descriptor, error) {
	profile, err := hypervisor.ForURI(cfg.URI)
	if err != nil {
		return cpi.Descriptor{}, err
	}
	return cpi.Descriptor{
		Name:            fmt.Sprintf("libvirt %s (%s)", profile.Driver, cfg.URI),
		StemcellFormats: profile.StemcellFormats,
		Open: func(ctx context.Context) (cpi.Runtime, error) {
			return libvirt.Open(ctx, cfg, log)
		},
	}, nil
}
