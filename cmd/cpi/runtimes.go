package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpi"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/docker"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
)

// The Docker runtime speaks the seam's types without importing it.
var (
	_ cpi.Runtime   = (*docker.Runtime)(nil)
	_ cpi.Snapshots = (*docker.Runtime)(nil)
	_ cpi.Networks  = (*libvirt.Backend)(nil)
)

// runtimeSelector is the one place that names every runtime: it picks the
// one a call's config names, connecting to nothing.
func runtimeSelector(log *slog.Logger) cpi.Selector {
	return func(cfg config.Config) (cpi.Descriptor, error) {
		switch cfg.Runtime {
		case config.RuntimeLibvirt:
			return libvirtRuntime(cfg, log)
		case config.RuntimeDocker:
			return dockerRuntime(cfg, log), nil
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

// dockerRuntime runs VMs as containers of the daemon docker.host names,
// from warden stemcells; its files live in store_dir/docker.
func dockerRuntime(cfg config.Config, log *slog.Logger) cpi.Descriptor {
	d := cfg.DockerSection()
	dcfg := docker.Config{Host: d.Host, Network: d.Network, StoreDir: cfg.DockerStoreDir()}
	if d.TLS != nil {
		dcfg.TLS = docker.TLS{CACert: d.TLS.CACert, ClientCert: d.TLS.ClientCert, ClientKey: d.TLS.ClientKey}
	}
	return cpi.Descriptor{
		Name:            fmt.Sprintf("docker (%s)", d.Host),
		StemcellFormats: []string{stemcell.StemcellWardenTar, stemcell.StemcellGeneralTar},
		Open: func(ctx context.Context) (cpi.Runtime, error) {
			r, err := docker.Open(ctx, dcfg, log)
			if err != nil {
				return nil, err // not a nil *docker.Runtime in a non-nil interface
			}
			return r, nil
		},
	}
}
