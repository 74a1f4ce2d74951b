package libvirt

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// On a remote LXC host the root filesystem would have to be unpacked and
// mounted on that host: stemcells, VMs and disks are NotSupported, named
// by driver, before anything is made (no connection is needed to say so).
func TestRemoteLXCHostRefusesWhatNeedsItsFilesystem(t *testing.T) {
	ctx := context.Background()
	for _, uri := range []string{"lxc+ssh://root@192.0.2.1/system", "lxc+tls://192.0.2.1/system"} {
		b := &Backend{cfg: config.Config{URI: uri, StoreDir: "/store"}, profile: hypervisor.LXC}
		calls := map[string]error{
			"create_stemcell": b.ImportStemcell(ctx, "sc-1", &stemcell.Image{Format: stemcell.FormatRootfsTar}),
			"create_disk":     b.CreateDisk(ctx, disk.Spec{CID: "d-1", SizeMiB: 1}),
		}
		_, calls["create_vm"] = b.CreateVM(ctx, vm.Spec{CID: "vm-1"}, agentsettings.Settings{})
		for call, err := range calls {
			if !errors.Is(err, cpierr.ErrNotSupported) || !strings.Contains(err.Error(), "lxc driver") || !strings.Contains(err.Error(), "remote") {
				t.Errorf("%s on %s = %v; want NotSupported naming the lxc driver and the remote host", call, uri, err)
			}
		}
	}
}

func TestStaticAddresses(t *testing.T) {
	nics := []vm.NIC{{BOSHNetwork: "a", MAC: "00:16:3E:00:00:01", IP: "10.0.0.5"}, {BOSHNetwork: "b", MAC: "00:16:3e:00:00:02", IP: "10.1.0.5"}, {BOSHNetwork: "dyn", MAC: "00:16:3e:00:00:03"}}
	networks := map[string]agentsettings.Network{
		"a":   {Type: "manual", IP: "10.0.0.5", Netmask: "255.255.255.0", Gateway: "10.0.0.1", Default: []string{"dns", "gateway"}},
		"b":   {Type: "manual", IP: "10.1.0.5", Netmask: "255.255.0.0", Gateway: "10.1.0.1"},
		"dyn": {Type: "dynamic"},
	}
	got, err := staticAddresses(nics, networks)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]xmldef.NICAddress{
		"00:16:3e:00:00:01": {IP: "10.0.0.5", Prefix: 24, Gateway: "10.0.0.1"},
		"00:16:3e:00:00:02": {IP: "10.1.0.5", Prefix: 16},
	}
	if len(got) != len(want) || got["00:16:3e:00:00:01"] != want["00:16:3e:00:00:01"] || got["00:16:3e:00:00:02"] != want["00:16:3e:00:00:02"] {
		t.Errorf("addresses %+v; want %+v", got, want)
	}
	networks["b"] = agentsettings.Network{Type: "manual", IP: "10.1.0.5", Netmask: "255.0.255.0"}
	if _, err := staticAddresses(nics, networks); err == nil {
		t.Error("a non-contiguous netmask was accepted")
	}
}

func TestLoopablePath(t *testing.T) {
	if err := loopablePath("/var/lib/libvirt/images/bosh/virtio-2aeytrnnncxxi"); err != nil {
		t.Error(err)
	}
	if err := loopablePath("/" + strings.Repeat("x", 63)); err == nil || !strings.Contains(err.Error(), "pool_path") {
		t.Errorf("a 64-byte path: %v; want a refusal naming pool_path", err)
	}
}
