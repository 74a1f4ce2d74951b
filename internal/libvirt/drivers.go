package libvirt

import (
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

// refused answers NotSupported, naming the driver and why, for a method
// the host's libvirt driver cannot do (the profile's Refused: vbox and
// vmwarews), before anything is looked up or made; nil when it can.
func (b *Backend) refused(op hypervisor.Operation, doing string) error {
	if err := b.profile.RefusalError(op); err != nil {
		return fmt.Errorf("%s: %w: %w", doing, err, cpierr.ErrNotSupported)
	}
	return nil
}

// qemuUndefineFlags remove everything QEMU keeps beside a definition
// (managed save image, snapshot and checkpoint metadata, NVRAM).
const qemuUndefineFlags = golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
	golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata

// undefineFlags are the flags the host's driver takes: libxl refuses all
// but the managed save (virCheckFlags in libxlDomainUndefineFlags), the
// lxc driver every one.
func (b *Backend) undefineFlags() golibvirt.DomainUndefineFlagsValues {
	switch {
	case b.containers():
		return 0
	case b.profile.Driver == hypervisor.Xen.Driver:
		return golibvirt.DomainUndefineManagedSave
	}
	return qemuUndefineFlags
}

// libxlLogDir is where libvirt's libxl driver keeps its logs on the host.
const libxlLogDir = "/var/log/libvirt/libxl"

// hostLogDir is libvirt's log directory of the host's driver, which exists
// wherever that driver runs (remoteConsoleDir for QEMU).
func (b *Backend) hostLogDir() string {
	if b.profile.Driver == hypervisor.Xen.Driver {
		return libxlLogDir
	}
	return remoteConsoleDir
}
