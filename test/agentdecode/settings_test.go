// Package agentdecode decodes the agent settings the CPI writes onto the
// config drive with bosh-agent's own settings types (module v2.759.0), and
// reads them through the agent's own accessors: what the real agent will
// see, not what the project's test agent assumes.
package agentdecode

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	boshsettings "github.com/cloudfoundry/bosh-agent/v2/settings"
	"github.com/cloudfoundry/bosh-cpi-go/apiv1"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/configdrive"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpi"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

const (
	mbus     = "https://mbus:secret@0.0.0.0:6868"
	agentID  = "agent-decode"
	manualIP = "10.0.0.10"
	networks = `{
 "manual": {"type":"manual","ip":"10.0.0.10","netmask":"255.255.255.0","gateway":"10.0.0.1","dns":["10.0.0.2"],"default":["dns","gateway"],"cloud_properties":{}},
 "dyn": {"type":"dynamic","cloud_properties":{}},
 "public": {"type":"vip","ip":"203.0.113.5","cloud_properties":{}}
}`
	env = `{"bosh":{"group":"g","password":"*","ntp":["ntp.example"],
 "mbus":{"cert":{"ca":"CA","certificate":"CERT","private_key":"KEY"}},
 "blobstores":[{"provider":"local","options":{"blobstore_path":"/var/vcap/micro_bosh/data/cache"}}]},
 "persistent_disk_fs":"ext4"}`
)

// createdVM is a runtime that completes the VM as the QEMU profile does and
// keeps the config drive it would deliver; no other method is ever called.
type createdVM struct {
	cpi.Runtime
	spec        vm.Spec
	configDrive []byte
}

func (b *createdVM) CreateVM(_ context.Context, spec vm.Spec, settings agentsettings.Settings) (agentsettings.Settings, error) {
	spec, settings, err := hypervisor.QEMU.CompleteVM(spec, settings)
	if err != nil {
		return agentsettings.Settings{}, err
	}
	b.spec = spec
	b.configDrive, err = configdrive.Build(settings, agentsettings.NewMetaData(spec.CID, spec.PublicKeys))
	return settings, err
}
func (b *createdVM) Close() error { return nil }

// createVM runs the CPI's create_vm for a stemcell API version with one
// persistent disk and returns the spec the backend got and the settings as
// bosh-agent decodes them from the config drive's user-data.
func createVM(t *testing.T, stemcellAPI int, diskCID string) (vm.Spec, boshsettings.Settings) {
	t.Helper()
	cfg := config.Config{StoreDir: t.TempDir(), Network: "default", URI: "test:///", Agent: config.Agent{Mbus: mbus, NTP: []string{"cpi-ntp.example"}}}
	backend := &createdVM{}
	factory := cpi.NewFactory(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(config.Config) (cpi.Descriptor, error) {
		return cpi.Descriptor{Open: func(context.Context) (cpi.Runtime, error) { return backend, nil }}, nil
	})
	callCtx := apiv1.CloudPropsImpl{RawMessage: json.RawMessage(fmt.Sprintf(`{"vm":{"stemcell":{"api_version":%d}}}`, stemcellAPI))}
	c, err := factory.New(callCtx)
	if err != nil {
		t.Fatal(err)
	}
	var nets apiv1.Networks
	if err := json.Unmarshal([]byte(networks), &nets); err != nil {
		t.Fatal(err)
	}
	var envMap map[string]any
	if err := json.Unmarshal([]byte(env), &envMap); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.CreateVMV2(apiv1.NewAgentID(agentID), apiv1.NewStemcellCID("sc-11111111-2222-3333-4444-555555555555"),
		apiv1.CloudPropsImpl{RawMessage: json.RawMessage(`{}`)}, nets, []apiv1.DiskCID{apiv1.NewDiskCID(diskCID)}, apiv1.NewVMEnv(envMap))
	if err != nil {
		t.Fatal(err)
	}
	userData, err := configdrive.ReadUserData(backend.configDrive)
	if err != nil {
		t.Fatal(err)
	}
	var s boshsettings.Settings
	if err := json.Unmarshal(userData, &s); err != nil {
		t.Fatalf("bosh-agent's settings.Settings cannot decode the user-data: %v\n%s", err, userData)
	}
	return backend.spec, s
}

func TestAgentDecodesTheSettings(t *testing.T) {
	diskCID := disk.NewCID()
	for _, api := range []int{1, 2} {
		spec, s := createVM(t, api, diskCID)
		if s.AgentID != agentID || s.VM.Name != spec.CID {
			t.Errorf("API %d: agent_id %q, vm.name %q; want %q, %q", api, s.AgentID, s.VM.Name, agentID, spec.CID)
		}
		if s.GetMbusURL() != mbus {
			t.Errorf("API %d: the agent's mbus URL is %q; want %q", api, s.GetMbusURL(), mbus)
		}
		checkNetworks(t, api, spec, s.Networks)
		if eph := s.EphemeralDiskSettings(); eph.Path != "/dev/"+hypervisor.QEMU.EphemeralTarget {
			t.Errorf("API %d: ephemeral disk settings %+v; want path /dev/%s", api, eph, hypervisor.QEMU.EphemeralTarget)
		}
		checkPersistent(t, api, diskCID, s)
		if s.Env.Bosh.Password != "*" || s.Env.PersistentDiskFS != "ext4" || s.Env.Bosh.Mbus.Cert.CA != "CA" {
			t.Errorf("API %d: env not as create_vm got it: %+v", api, s.Env)
		}
		if ntp := s.GetNtpServers(); len(ntp) != 1 || ntp[0] != "ntp.example" {
			t.Errorf("API %d: the agent's NTP servers %v; want env.bosh.ntp", api, ntp)
		}
		if b := s.GetBlobstore(); b.Type != "local" || b.Options["blobstore_path"] != "/var/vcap/micro_bosh/data/cache" {
			t.Errorf("API %d: the agent's blobstore %+v; want env.bosh.blobstores[0]", api, b)
		}
	}
}

// checkNetworks: every network but vip is found by the agent by the MAC of
// a NIC of the domain; the vip network is there, without a MAC or NIC.
func checkNetworks(t *testing.T, api int, spec vm.Spec, nets boshsettings.Networks) {
	t.Helper()
	if len(spec.NICs) != 2 {
		t.Fatalf("API %d: %d NICs; want one per network but vip: %+v", api, len(spec.NICs), spec.NICs)
	}
	for _, nic := range spec.NICs {
		n, ok := nets.NetworkForMac(nic.MAC)
		if !ok {
			t.Errorf("API %d: the agent finds no network for NIC %s (MAC %s)", api, nic.BOSHNetwork, nic.MAC)
			continue
		}
		if nic.BOSHNetwork == "dyn" && !n.IsDHCP() {
			t.Errorf("API %d: dynamic network %+v is not DHCP to the agent", api, n)
		}
		if nic.BOSHNetwork == "manual" && (n.IsDHCP() || n.IP != manualIP || n.Netmask != "255.255.255.0" || n.Gateway != "10.0.0.1" || !n.IsDefaultFor("gateway")) {
			t.Errorf("API %d: manual network as the agent reads it: %+v", api, n)
		}
	}
	if vip, ok := nets["public"]; !ok || !vip.IsVIP() || vip.Mac != "" || vip.IP != "203.0.113.5" {
		t.Errorf("API %d: vip network as the agent reads it: %+v (present %v)", api, vip, ok)
	}
}

// checkPersistent: API 1 names the disk at boot, keyed by its CID, and the
// agent's DiskSettings carry the CID as ID (what its by-id lookup uses):
// the by-id name of the serial the hint's id gives. From API 2 on
// disks.persistent is empty.
func checkPersistent(t *testing.T, api int, diskCID string, s boshsettings.Settings) {
	t.Helper()
	if api >= 2 {
		if len(s.Disks.Persistent) != 0 {
			t.Errorf("API %d: disks.persistent %v; want it empty", api, s.Disks.Persistent)
		}
		return
	}
	d, ok := s.PersistentDiskSettings(diskCID)
	if !ok || d.ID != diskCID || d.Path != "/dev/vdc" || disk.ByIDPrefix+d.DeviceID != d.ID {
		t.Errorf("API 1: persistent disk settings %+v (found %v); want ID %s, path /dev/vdc, DeviceID its serial", d, ok, diskCID)
	}
}
