package libvirt

import (
	"context"
	"errors"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// What libvirt's vbox and vmware drivers cannot do is answered
// NotSupported naming the driver and the method, before anything is
// looked up or made: the backend has no connection here, and a call that
// went past the refusal would fail on it instead.
func TestDriversRefuseWhatTheyCannotDo(t *testing.T) {
	ctx := context.Background()
	for _, p := range []hypervisor.Profile{hypervisor.VBox, hypervisor.VMware} {
		b := &Backend{cfg: config.Config{URI: p.URI("", ""), StoreDir: "/store"}, profile: p}
		calls := map[hypervisor.Operation]error{
			hypervisor.OpImportStemcell: b.ImportStemcell(ctx, "sc-1", &stemcell.Image{Format: stemcell.FormatQcow2}),
			hypervisor.OpCreateDisk:     b.CreateDisk(ctx, disk.Spec{CID: "disk-1", SizeMiB: 1}),
			hypervisor.OpDetachDisk:     b.DetachDisk(ctx, "vm-1", "disk-1"),
			hypervisor.OpSetVMMetadata:  b.SetVMMetadata(ctx, "vm-1", vm.Metadata{"job": "j"}),
		}
		_, calls[hypervisor.OpCreateVM] = b.CreateVM(ctx, vm.Spec{CID: "vm-1"}, agentsettings.Settings{})
		_, calls[hypervisor.OpAttachDisk] = b.AttachDisk(ctx, "vm-1", "disk-1")
		for op, err := range calls {
			if !errors.Is(err, cpierr.ErrNotSupported) || !strings.Contains(err.Error(), "libvirt's "+p.Driver+" driver") || !strings.Contains(err.Error(), string(op)) {
				t.Errorf("%s on %s = %v; want NotSupported naming the method and the driver", op, p.Driver, err)
			}
			if got := cpierr.TypeOf(cpierr.Wrap(err, "%s", op)); got != cpierr.TypeNotSupported {
				t.Errorf("%s on %s answers the director %s; want %s", op, p.Driver, got, cpierr.TypeNotSupported)
			}
		}
	}
}

func TestUndefineFlagsPerDriver(t *testing.T) {
	cases := []struct {
		p    hypervisor.Profile
		want golibvirt.DomainUndefineFlagsValues
	}{
		{hypervisor.QEMU, qemuUndefineFlags},
		{hypervisor.LXC, 0},
		{hypervisor.Xen, golibvirt.DomainUndefineManagedSave},
	}
	for _, c := range cases {
		if got := (&Backend{profile: c.p}).undefineFlags(); got != c.want {
			t.Errorf("%s: undefine flags %#x, want %#x", c.p.Driver, got, c.want)
		}
	}
}

// A remote host's console log goes to its driver's own log directory.
func TestRemoteConsoleLogPerDriver(t *testing.T) {
	cases := []struct {
		p    hypervisor.Profile
		uri  string
		want string
	}{
		{hypervisor.QEMU, "qemu+ssh://root@192.0.2.1/system", "/var/log/libvirt/qemu/vm-1-console.log"},
		{hypervisor.Xen, "xen+ssh://root@192.0.2.1/system", "/var/log/libvirt/libxl/vm-1-console.log"},
	}
	for _, c := range cases {
		b := &Backend{cfg: config.Config{URI: c.uri, StoreDir: "/store"}, profile: c.p}
		if got := b.consoleLogPath("vm-1"); got != c.want {
			t.Errorf("%s: console log %s, want %s", c.p.Driver, got, c.want)
		}
	}
}
