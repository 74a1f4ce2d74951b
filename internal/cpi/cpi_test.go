package cpi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfoundry/bosh-cpi-go/apiv1"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// recordingBackend keeps what the CPI layer asked for; the real runtime is
// exercised by the integration suite.
type recordingBackend struct {
	created   []vm.Spec
	settings  []agentsettings.Settings
	updated   []agentsettings.Settings
	calls     []string
	createErr error
	attachErr error
	vms       map[string]bool
}

func (r *recordingBackend) record(format string, args ...any) {
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recordingBackend) ImportStemcell(_ context.Context, cid string, _ *stemcell.Image) error {
	r.record("ImportStemcell %s", cid)
	return nil
}
func (r *recordingBackend) DeleteStemcell(_ context.Context, cid string) error {
	r.record("DeleteStemcell %s", cid)
	return nil
}
func (r *recordingBackend) CreateVM(_ context.Context, spec vm.Spec, settings agentsettings.Settings) (agentsettings.Settings, error) {
	r.record("CreateVM %s", spec.CID)
	if r.createErr != nil {
		return agentsettings.Settings{}, r.createErr
	}
	r.created = append(r.created, spec)
	r.settings = append(r.settings, settings)
	return settings, nil
}
func (r *recordingBackend) DeleteVM(_ context.Context, cid string) error {
	r.record("DeleteVM %s", cid)
	return fmt.Errorf("domain %s: %w", cid, cpierr.ErrNotFound)
}
func (r *recordingBackend) HasVM(_ context.Context, cid string) (bool, error) {
	r.record("HasVM %s", cid)
	return r.vms[cid], nil
}
func (r *recordingBackend) RebootVM(_ context.Context, cid string) error {
	r.record("RebootVM %s", cid)
	return nil
}
func (r *recordingBackend) SetVMMetadata(_ context.Context, cid string, _ vm.Metadata) error {
	r.record("SetVMMetadata %s", cid)
	return nil
}
func (r *recordingBackend) UpdateSettings(_ context.Context, cid string, settings agentsettings.Settings, _ []string) error {
	r.record("UpdateSettings %s", cid)
	r.updated = append(r.updated, settings)
	return nil
}
func (r *recordingBackend) CreateDisk(_ context.Context, spec disk.Spec) error {
	r.record("CreateDisk %s %d %s", spec.CID, spec.SizeMiB, spec.Format)
	return nil
}
func (r *recordingBackend) DeleteDisk(_ context.Context, cid string) error {
	r.record("DeleteDisk %s", cid)
	return fmt.Errorf("disk %s attached to vm-x: %w", cid, cpierr.ErrInUse)
}
func (r *recordingBackend) HasDisk(_ context.Context, cid string) (bool, error) { return true, nil }

// attachedHint is the hint the recording runtime answers attach_disk with.
var attachedHint = disk.Hint{ID: "runtime-id", Path: "/dev/vdd"}

func (r *recordingBackend) AttachDisk(_ context.Context, vmCID, diskCID string) (disk.Hint, error) {
	r.record("AttachDisk %s %s", vmCID, diskCID)
	return attachedHint, r.attachErr
}
func (r *recordingBackend) DetachDisk(_ context.Context, vmCID, diskCID string) error {
	r.record("DetachDisk %s %s", vmCID, diskCID)
	return fmt.Errorf("disk %s on %s: %w", diskCID, vmCID, cpierr.ErrNotAttached)
}
func (r *recordingBackend) AttachedDisks(_ context.Context, vmCID string) ([]string, error) {
	return nil, nil
}
func (r *recordingBackend) ResizeDisk(_ context.Context, cid string, size int) error {
	r.record("ResizeDisk %s %d", cid, size)
	return fmt.Errorf("disk %s is attached: %w", cid, cpierr.ErrNotSupported)
}
func (r *recordingBackend) SetDiskMetadata(context.Context, string, disk.Metadata) error { return nil }
func (r *recordingBackend) GetDiskMetadata(context.Context, string) (disk.Metadata, error) {
	return nil, nil
}
func (r *recordingBackend) SnapshotDisk(_ context.Context, diskCID, snapCID string, _ disk.Metadata) error {
	r.record("SnapshotDisk %s %s", diskCID, snapCID)
	return nil
}
func (r *recordingBackend) DiskHolders(_ context.Context, cid string) ([]string, error) {
	r.record("DiskHolders %s", cid)
	return nil, nil
}

func (r *recordingBackend) DeleteSnapshot(_ context.Context, cid string) error {
	r.record("DeleteSnapshot %s", cid)
	return nil
}
func (r *recordingBackend) Close() error { return nil }

const (
	validVM       = "vm-11111111-2222-3333-4444-555555555555"
	validDisk     = "virtio-abcdefgh23456"
	legacyDisk    = "disk-11111111-2222-3333-4444-555555555555"
	validStemcell = "sc-11111111-2222-3333-4444-555555555555"
)

func newTestCPI(t *testing.T, backend *recordingBackend, stemcellAPI int) *CPI {
	t.Helper()
	cfg := config.Config{StoreDir: t.TempDir(), Network: "default", URI: "test:///", Agent: config.Agent{
		Mbus: "https://mbus:secret@0.0.0.0:6868", NTP: []string{"time.example"},
		Blobstore: &config.Blobstore{Provider: "dav", Options: map[string]any{"endpoint": "http://10.0.0.6:25250"}},
	}}
	f := NewFactory(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), fixedRuntime(backend))
	ctxJSON := fmt.Sprintf(`{"vm":{"stemcell":{"api_version":%d}}}`, stemcellAPI)
	c, err := f.New(apiv1.CloudPropsImpl{RawMessage: json.RawMessage(ctxJSON)})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*CPI)
}

// fixedRuntime selects r for every call.
func fixedRuntime(r Runtime) Selector {
	return func(config.Config) (Descriptor, error) {
		return Descriptor{Name: "recording", StemcellFormats: []string{"test-format"},
			Open: func(context.Context) (Runtime, error) { return r, nil }}, nil
	}
}

func props(t *testing.T, raw string) apiv1.CloudPropsImpl {
	t.Helper()
	return apiv1.CloudPropsImpl{RawMessage: json.RawMessage(raw)}
}

func networks(t *testing.T, raw string) apiv1.Networks {
	t.Helper()
	var n apiv1.Networks
	if err := json.Unmarshal([]byte(raw), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

const twoNetworks = `{
 "manual": {"type":"manual","ip":"10.0.0.10","netmask":"255.255.255.0","gateway":"10.0.0.1","dns":["8.8.8.8"],"default":["dns","gateway"],"cloud_properties":{"name":"boshnet"}},
 "dyn": {"type":"dynamic","cloud_properties":{}}
}`

func TestCreateVMPlansSettingsThatMatchTheDomain(t *testing.T) {
	backend := &recordingBackend{}
	c := newTestCPI(t, backend, 2)
	cid, nets, err := c.CreateVMV2(apiv1.NewAgentID("agent-7"), apiv1.NewStemcellCID(validStemcell),
		props(t, `{"cpu":2,"ram":2048,"disk":4096}`), networks(t, twoNetworks),
		[]apiv1.DiskCID{apiv1.NewDiskCID(validDisk)}, apiv1.NewVMEnv(map[string]any{"bosh": map[string]any{"group": "g"}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 2 || len(backend.created) != 1 {
		t.Fatalf("networks %d, created %d", len(nets), len(backend.created))
	}
	spec := backend.created[0]
	if spec.CID != cid.AsString() || !vm.ValidCID(spec.CID) {
		t.Fatalf("spec CID %q vs returned %q", spec.CID, cid.AsString())
	}
	if spec.Props != (vm.Props{CPUs: 2, MemoryMiB: 2048, EphemeralDiskMiB: 4096}) {
		t.Fatalf("aliases cpu/ram/disk not honoured: %+v", spec.Props)
	}
	s := backend.settings[0]
	if s.AgentID != "agent-7" || s.VM.Name != spec.CID || s.Mbus == "" || s.Blobstore == nil || s.Env["bosh"] == nil {
		t.Fatalf("settings incomplete: %+v", s)
	}
	// MACs and device hints are the runtime's to choose.
	for _, nic := range spec.NICs {
		if _, ok := s.Networks[nic.BOSHNetwork]; !ok || nic.MAC != "" || s.Networks[nic.BOSHNetwork].MAC != "" {
			t.Errorf("network %s: the CPI layer chose a MAC or left the network out of the settings: %+v", nic.BOSHNetwork, s.Networks)
		}
	}
	if spec.NICs[1].LibvirtNetwork != "boshnet" || spec.NICs[0].LibvirtNetwork != "default" || !spec.NICs[0].Dynamic {
		t.Errorf("libvirt networks not mapped: %+v", spec.NICs)
	}
	if s.Networks["manual"].IP != "10.0.0.10" || s.Networks["manual"].Gateway != "10.0.0.1" || !s.Networks["dyn"].UseDHCP {
		t.Errorf("network details lost: %+v", s.Networks)
	}
	if len(spec.Disks) != 1 || spec.Disks[0].Target != "" || spec.Disks[0].DiskCID != validDisk {
		t.Errorf("persistent disk plan %+v", spec.Disks)
	}
	if len(s.Disks.Persistent) != 0 || s.Disks.System != "" || s.Disks.Ephemeral != nil {
		t.Errorf("the CPI layer wrote disk hints: %+v", s.Disks)
	}
}

// TestCreateVMPersistentSettingsByStemcellAPI: the runtime is told to name
// the disks of disk_cids in the boot-time settings for stemcell API 1 only,
// whose settings follow attach and detach; from API 2 on they stay {}.
func TestCreateVMPersistentSettingsByStemcellAPI(t *testing.T) {
	for api, want := range map[int]bool{1: true, 2: false, 3: false} {
		backend := &recordingBackend{}
		c := newTestCPI(t, backend, api)
		_, _, err := c.CreateVMV2(apiv1.NewAgentID("a"), apiv1.NewStemcellCID(validStemcell), props(t, `{}`), networks(t, twoNetworks),
			[]apiv1.DiskCID{apiv1.NewDiskCID(validDisk)}, apiv1.NewVMEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := backend.created[0].PersistentDisksInSettings; got != want {
			t.Errorf("stemcell API %d: PersistentDisksInSettings = %v; want %v", api, got, want)
		}
		if got, _ := json.Marshal(backend.settings[0].Disks.Persistent); string(got) != `{}` {
			t.Errorf("stemcell API %d: the CPI layer wrote disks.persistent %s", api, got)
		}
	}
}

// TestCreateVMGivesVipNetworksNoNIC: a vip network gets no NIC and no MAC
// (the agent skips it; a NIC of its own would sit on the default network
// without an address), and stays in the settings as the director sent it,
// its cloud_properties (another system's) not read as ours.
func TestCreateVMGivesVipNetworksNoNIC(t *testing.T) {
	backend := &recordingBackend{}
	c := newTestCPI(t, backend, 2)
	nets := `{
 "manual": {"type":"manual","ip":"10.0.0.10","netmask":"255.255.255.0","gateway":"10.0.0.1","dns":["8.8.8.8"],"default":["dns","gateway"],"cloud_properties":{}},
 "public": {"type":"vip","ip":"203.0.113.5","cloud_properties":{"floating_pool":"ext"}}
}`
	_, _, err := c.CreateVMV2(apiv1.NewAgentID("a"), apiv1.NewStemcellCID(validStemcell), props(t, `{}`), networks(t, nets), nil, apiv1.NewVMEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	spec := backend.created[0]
	if len(spec.NICs) != 1 || spec.NICs[0].BOSHNetwork != "manual" {
		t.Fatalf("NICs %+v; want the manual network's alone", spec.NICs)
	}
	s := backend.settings[0]
	vip, ok := s.Networks["public"]
	if !ok || vip.Type != "vip" || vip.IP != "203.0.113.5" || vip.MAC != "" || string(vip.CloudProperties) != `{"floating_pool":"ext"}` {
		t.Fatalf("vip network in the settings: %+v (present %v)", vip, ok)
	}
}

func TestCreateVMRejectsBadInputWithoutTouchingTheBackend(t *testing.T) {
	cases := []struct {
		name, props, nets, stemcell string
		disks                       []string
		want                        string
	}{
		{"unknown VM key", `{"cpus":1,"memroy":5}`, twoNetworks, validStemcell, nil, "memroy"},
		{"aliases disagree", `{"cpus":1,"cpu":2}`, twoNetworks, validStemcell, nil, "disagree"},
		{"unknown network key", `{}`, `{"n":{"type":"dynamic","cloud_properties":{"vlan":"12"}}}`, validStemcell, nil, "vlan"},
		{"foreign stemcell", `{}`, twoNetworks, "../../etc/passwd", nil, "not a stemcell CID"},
		{"foreign disk", `{}`, twoNetworks, validStemcell, []string{"disk-../../x"}, "not a disk CID"},
		{"no networks", `{}`, `{}`, validStemcell, nil, "no networks"},
		{"same disk twice", `{}`, twoNetworks, validStemcell, []string{validDisk, validDisk}, "given twice"},
		{"ip that does not parse", `{}`, `{"m":{"type":"manual","ip":"999.1.1.1","netmask":"255.255.255.0","gateway":"10.0.0.1"}}`, validStemcell, nil, "999.1.1.1"},
		{"gateway outside the subnet", `{}`, `{"m":{"type":"manual","ip":"10.0.0.5","netmask":"255.255.255.0","gateway":"10.0.1.1"}}`, validStemcell, nil, "not inside 10.0.0.0/24"},
		{"bad netmask", `{}`, `{"m":{"type":"manual","ip":"10.0.0.5","netmask":"255.0.255.0","gateway":"10.0.0.1"}}`, validStemcell, nil, "netmask"},
		{"two networks, one ip", `{}`, `{"a":{"type":"manual","ip":"10.0.0.5","netmask":"255.255.255.0","gateway":"10.0.0.1"},"b":{"type":"manual","ip":"10.0.0.5","netmask":"255.255.255.0","gateway":"10.0.0.1"}}`, validStemcell, nil, "both give the VM ip 10.0.0.5"},
		{"manual without ip", `{}`, `{"m":{"type":"manual"}}`, validStemcell, nil, "has no IP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			backend := &recordingBackend{}
			c := newTestCPI(t, backend, 2)
			var disks []apiv1.DiskCID
			for _, d := range tc.disks {
				disks = append(disks, apiv1.NewDiskCID(d))
			}
			_, _, err := c.CreateVMV2(apiv1.NewAgentID("a"), apiv1.NewStemcellCID(tc.stemcell), props(t, tc.props), networks(t, tc.nets), disks, apiv1.NewVMEnv(nil))
			assertType(t, err, cpierr.TypeVMCreationFailed)
			if !strings.Contains(err.Error(), tc.want) || err.(*cpierr.Error).CanRetry() {
				t.Fatalf("error %q: want it to mention %q and not be retryable", err, tc.want)
			}
			if len(backend.calls) != 0 {
				t.Fatalf("backend was called: %v", backend.calls)
			}
		})
	}
}

func TestCreateVMRetryFlag(t *testing.T) {
	cases := []struct {
		err   error
		retry bool
	}{
		{errors.New("qemu exited while starting"), true},
		{fmt.Errorf("stemcell volume: %w", cpierr.ErrNotFound), false},
		{fmt.Errorf("pool full: %w", cpierr.ErrNoSpace), false},
	}
	for _, tc := range cases {
		c := newTestCPI(t, &recordingBackend{createErr: tc.err}, 2)
		_, _, err := c.CreateVMV2(apiv1.NewAgentID("a"), apiv1.NewStemcellCID(validStemcell), props(t, `{}`), networks(t, twoNetworks), nil, apiv1.NewVMEnv(nil))
		assertType(t, err, cpierr.TypeVMCreationFailed)
		if got := err.(*cpierr.Error).CanRetry(); got != tc.retry {
			t.Errorf("%v: ok_to_retry %v; want %v", tc.err, got, tc.retry)
		}
	}
}

func TestForeignCIDsTouchNothing(t *testing.T) {
	for _, bad := range []string{"../../etc", "other-domain", "vm-1", "disk-../x", validDisk + "/..", "virtio-../../etc/x", "virtio-*"} {
		backend := &recordingBackend{}
		c := newTestCPI(t, backend, 2)
		assertType(t, c.DeleteVM(apiv1.NewVMCID(bad)), cpierr.TypeVMNotFound)
		assertType(t, c.RebootVM(apiv1.NewVMCID(bad)), cpierr.TypeVMNotFound)
		assertType(t, c.SetVMMetadata(apiv1.NewVMCID(bad), apiv1.NewVMMeta(nil)), cpierr.TypeVMNotFound)
		if has, err := c.HasVM(apiv1.NewVMCID(bad)); has || err != nil {
			t.Errorf("HasVM(%q) = %v, %v", bad, has, err)
		}
		assertType(t, c.DeleteDisk(apiv1.NewDiskCID(bad)), cpierr.TypeDiskNotFound)
		_, err := c.AttachDiskV2(apiv1.NewVMCID(validVM), apiv1.NewDiskCID(bad))
		assertType(t, err, cpierr.TypeDiskNotFound)
		if err := c.DeleteStemcell(apiv1.NewStemcellCID(bad)); err == nil {
			t.Errorf("DeleteStemcell(%q) succeeded", bad)
		}
		if err := c.DeleteSnapshot(apiv1.NewSnapshotCID(bad)); err == nil {
			t.Errorf("DeleteSnapshot(%q) succeeded", bad)
		}
		if len(backend.calls) != 0 {
			t.Errorf("CID %q reached the backend: %v", bad, backend.calls)
		}
	}
}

func TestBackendSentinelsBecomeDirectorTypes(t *testing.T) {
	backend := &recordingBackend{vms: map[string]bool{validVM: true}}
	c := newTestCPI(t, backend, 2)
	assertType(t, c.DeleteVM(apiv1.NewVMCID(validVM)), cpierr.TypeVMNotFound)
	assertType(t, c.DetachDisk(apiv1.NewVMCID(validVM), apiv1.NewDiskCID(validDisk)), cpierr.TypeDiskNotAttached)
	assertType(t, c.ResizeDisk(apiv1.NewDiskCID(validDisk), 2048), cpierr.TypeNotSupported)
	err := c.DeleteDisk(apiv1.NewDiskCID(validDisk))
	assertType(t, err, cpierr.TypeCloudError)
	if !strings.Contains(err.Error(), "detach it before deleting") {
		t.Errorf("delete of an attached disk: %v", err)
	}

	backend.attachErr = fmt.Errorf("volume: %w", cpierr.ErrNotFound)
	_, err = c.AttachDiskV2(apiv1.NewVMCID(validVM), apiv1.NewDiskCID(validDisk))
	assertType(t, err, cpierr.TypeDiskNotFound)
	backend.vms = nil
	_, err = c.AttachDiskV2(apiv1.NewVMCID(validVM), apiv1.NewDiskCID(validDisk))
	assertType(t, err, cpierr.TypeVMNotFound)
}

// TestAttachDiskHint: attach_disk answers the runtime's hint as it is.
func TestAttachDiskHint(t *testing.T) {
	for _, cid := range []string{validDisk, legacyDisk} {
		backend := &recordingBackend{}
		c := newTestCPI(t, backend, 2)
		hint, err := c.AttachDiskV2(apiv1.NewVMCID(validVM), apiv1.NewDiskCID(cid))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(hint)
		var got disk.Hint
		json.Unmarshal(raw, &got)
		if got != attachedHint {
			t.Fatalf("disk %s: hint %s; want the runtime's %+v", cid, raw, attachedHint)
		}
		for _, call := range backend.calls {
			if strings.HasPrefix(call, "UpdateSettings") {
				t.Fatalf("API v2 stemcell: settings must not be rewritten (%v)", backend.calls)
			}
		}
	}
}

// TestCreateDiskMintsByIDCIDs: a new disk's CID is "virtio-" plus the
// 13-character serial the backend gives it, 20 characters in all, so the
// guest's /dev/disk/by-id link of the disk is the CID.
func TestCreateDiskMintsByIDCIDs(t *testing.T) {
	backend := &recordingBackend{}
	c := newTestCPI(t, backend, 2)
	cid, err := c.CreateDisk(64, props(t, `{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := cid.AsString()
	serial, ok := strings.CutPrefix(id, "virtio-")
	if !ok || len(id) != 20 || disk.DiskSerial(id) != serial || !disk.ValidCID(id) {
		t.Fatalf("create_disk CID %q: want virtio-<13-character serial> with DiskSerial the serial (got %q)", id, disk.DiskSerial(id))
	}
	if got := strings.Join(backend.calls, "\n"); !strings.Contains(got, "CreateDisk "+id+" 64 qcow2") {
		t.Fatalf("backend calls %s", got)
	}
}

func TestStemcellAPIv1RewritesSettingsOnAttach(t *testing.T) {
	backend := &recordingBackend{}
	c := newTestCPI(t, backend, 1)
	cid, err := c.CreateVM(apiv1.NewAgentID("a"), apiv1.NewStemcellCID(validStemcell), props(t, `{}`), networks(t, twoNetworks), nil, apiv1.NewVMEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AttachDisk(cid, apiv1.NewDiskCID(validDisk)); err != nil {
		t.Fatal(err)
	}
	last := backend.calls[len(backend.calls)-1]
	if last != "UpdateSettings "+cid.AsString() {
		t.Fatalf("API v1 stemcell: attach must update the settings; calls %v", backend.calls)
	}
	if got := backend.updated[0].Disks.Persistent[validDisk]; got != attachedHint {
		t.Fatalf("updated settings name disk %s with %+v; want the runtime's hint %+v", validDisk, got, attachedHint)
	}
}

// delete_vm removes a stemcell-API-1 VM's saved settings with what a
// rewrite killed before its rename left beside them.
func TestDeleteVMRemovesSavedSettingsAndKilledRewrites(t *testing.T) {
	c := newTestCPI(t, &recordingBackend{}, 1)
	cid, err := c.CreateVM(apiv1.NewAgentID("a"), apiv1.NewStemcellCID(validStemcell), props(t, `{"ssh_public_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAl3FdIuVNEUjxao2A8YOXBw7BbWAKYjbSthSL7meEuJ vm@lab"}`), networks(t, twoNetworks), nil, apiv1.NewVMEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(c.cfg.VMDir(), "."+cid.AsString()+".json.2206136231")
	if err := os.WriteFile(killed, []byte(`{"agent_id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The recording runtime answers every delete as gone already: the
	// CPI's files go all the same.
	assertType(t, c.DeleteVM(cid), cpierr.TypeVMNotFound)
	if left, _ := os.ReadDir(c.cfg.VMDir()); len(left) > 0 {
		t.Fatalf("after delete_vm %s holds %v; want nothing", c.cfg.VMDir(), left)
	}
}

func TestCalculateVMCloudProperties(t *testing.T) {
	c := newTestCPI(t, &recordingBackend{}, 2)
	got, err := c.CalculateVMCloudProperties(apiv1.VMResources{CPU: 2, RAM: 4096, EphemeralDiskSize: 8192})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(got)
	parsed, err := vm.ParseProps(apiv1.CloudPropsImpl{RawMessage: raw})
	if err != nil || parsed != (vm.Props{CPUs: 2, MemoryMiB: 4096, EphemeralDiskMiB: 8192}) {
		t.Fatalf("calculated %s parses to %+v, %v", raw, parsed, err)
	}
	if _, err := c.CalculateVMCloudProperties(apiv1.VMResources{}); err == nil {
		t.Fatal("zero resources accepted")
	}
}

func TestInfoNeedsNoBackend(t *testing.T) {
	f := NewFactory(config.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(config.Config) (Descriptor, error) {
		return Descriptor{StemcellFormats: []string{"test-format"}, Open: func(context.Context) (Runtime, error) {
			t.Fatal("info opened the runtime")
			return nil, nil
		}}, nil
	})
	c, _ := f.New(apiv1.CloudPropsImpl{RawMessage: json.RawMessage(`{}`)})
	info, err := c.Info()
	if err != nil || len(info.StemcellFormats) != 1 || info.StemcellFormats[0] != "test-format" {
		t.Fatalf("info = %+v, %v; want the descriptor's formats", info, err)
	}
}

// TestSelectorRefusalIsACpiError: a config naming a runtime or
// hypervisor this CPI lacks fails every method, info included.
func TestSelectorRefusalIsACpiError(t *testing.T) {
	f := NewFactory(config.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(config.Config) (Descriptor, error) {
		return Descriptor{}, errors.New("key 'uri': libvirt driver 'lxc' is not supported")
	})
	_, err := f.New(apiv1.CloudPropsImpl{RawMessage: json.RawMessage(`{}`)})
	assertType(t, err, cpierr.TypeCpiError)
	if !strings.Contains(err.Error(), "lxc") {
		t.Fatalf("error %q does not name the driver", err)
	}
}

func assertType(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %s", want)
	}
	if got := cpierr.TypeOf(err); got != want {
		t.Fatalf("error type %s (%v); want %s", got, err, want)
	}
}

func TestContextPropertiesOverrideConfig(t *testing.T) {
	var opened config.Config
	cfg := config.Config{URI: "qemu:///system", Hypervisor: "auto", StoreDir: t.TempDir(), StoragePool: "bosh", Network: "default",
		Machine: "q35", HotplugSlots: 4, RebootTimeout: 5, Agent: config.Agent{Mbus: "https://h"}}
	f := NewFactory(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c config.Config) (Descriptor, error) {
		return Descriptor{Open: func(context.Context) (Runtime, error) {
			opened = c
			return &recordingBackend{}, nil
		}}, nil
	})
	c, err := f.New(apiv1.CloudPropsImpl{RawMessage: json.RawMessage(`{"request_id":"cpi-1","uri":"qemu+tcp://10.0.0.12/system","network":"bosh"}`)})
	if err != nil {
		t.Fatal(err)
	}
	c.HasVM(apiv1.NewVMCID(validVM))
	if opened.URI != "qemu+tcp://10.0.0.12/system" || opened.Network != "bosh" {
		t.Fatalf("the backend was opened with %+v; want the context's uri and network", opened)
	}
	if _, err := f.New(apiv1.CloudPropsImpl{RawMessage: json.RawMessage(`{"machine":"isapc"}`)}); err == nil {
		t.Fatal("an invalid context override was accepted")
	}
}

func TestSSHKeysReachTheRuntime(t *testing.T) {
	const cfgKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAl3FdIuVNEUjxao2A8YOXBw7BbWAKYjbSthSL7meEuI op@lab"
	const vmKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAl3FdIuVNEUjxao2A8YOXBw7BbWAKYjbSthSL7meEuJ vm@lab"
	for _, api := range []int{1, 2} {
		backend := &recordingBackend{}
		c := newTestCPI(t, backend, api)
		c.cfg.SSHPublicKey = cfgKey
		if _, _, err := c.CreateVMV2(apiv1.NewAgentID("agent-k"), apiv1.NewStemcellCID(validStemcell),
			props(t, `{"ssh_public_key":"`+vmKey+`"}`), networks(t, twoNetworks), nil, apiv1.NewVMEnv(nil)); err != nil {
			t.Fatal(err)
		}
		if keys := backend.created[0].PublicKeys; len(keys) != 2 || keys[0] != cfgKey || keys[1] != vmKey {
			t.Errorf("API %d: the VM's public keys = %q; want cpi.json's key then the VM's", api, keys)
		}
		if api == 1 {
			key, err := os.ReadFile(c.keysPath(backend.created[0].CID))
			if err != nil || string(key) != vmKey {
				t.Errorf("API 1: the VM's key is not kept for config drive rewrites: %q %v", key, err)
			}
		}
	}
}

// Sizes that would wrap around when turned into bytes never reach the backend.
func TestHugeDiskSizesAreRefusedBeforeTheBackend(t *testing.T) {
	backend := &recordingBackend{}
	c := newTestCPI(t, backend, 2)
	for _, size := range []int{disk.MaxSizeMiB + 1, 1 << 54, 1<<63 - 1} {
		if _, err := c.CreateDisk(size, props(t, `{}`), nil); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("CreateDisk(%d) = %v; want a refusal", size, err)
		}
		if err := c.ResizeDisk(apiv1.NewDiskCID(validDisk), size); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("ResizeDisk(%d) = %v; want a refusal", size, err)
		}
	}
	for _, call := range backend.calls {
		if strings.HasPrefix(call, "CreateDisk") || strings.HasPrefix(call, "ResizeDisk") {
			t.Errorf("the backend was asked: %s", call)
		}
	}
}

// withoutSnapshots is a runtime that takes no snapshots.
type withoutSnapshots struct{ Runtime }

func TestSnapshotsOfARuntimeWithoutThemAreNotSupported(t *testing.T) {
	backend := &recordingBackend{}
	c := newTestCPI(t, backend, 2)
	c.factory.runtime = withoutSnapshots{backend}
	_, err := c.SnapshotDisk(apiv1.NewDiskCID(validDisk), apiv1.NewDiskMeta(nil))
	assertType(t, err, cpierr.TypeNotSupported)
	assertType(t, c.DeleteSnapshot(apiv1.NewSnapshotCID("snap-11111111-2222-3333-4444-555555555555")), cpierr.TypeNotSupported)
	if len(backend.calls) != 0 {
		t.Fatalf("the runtime was asked: %v", backend.calls)
	}
}

// TestUnreachableRuntimeIsRetryable: a daemon that is down (restarting, or
// its host rebooting) answers ok_to_retry on every method; any other
// failure to open does not.
func TestUnreachableRuntimeIsRetryable(t *testing.T) {
	cases := []struct {
		name      string
		openErr   error
		wantRetry bool
	}{
		{"daemon down", fmt.Errorf("connecting to libvirt at 'qemu:///system': no answer within 5s: %w", cpierr.ErrUnreachable), true},
		{"refused config", errors.New("pool 'x' is not a directory pool"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFactory(config.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(config.Config) (Descriptor, error) {
				return Descriptor{Name: "test", Open: func(context.Context) (Runtime, error) { return nil, tc.openErr }}, nil
			})
			c, err := f.New(apiv1.CloudPropsImpl{RawMessage: json.RawMessage(`{}`)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.HasVM(apiv1.NewVMCID("vm-00000000-0000-0000-0000-000000000000"))
			var typed *cpierr.Error
			if !errors.As(err, &typed) || typed.Type() != cpierr.TypeCloudError || typed.CanRetry() != tc.wantRetry {
				t.Fatalf("has_vm = %v; want a CloudError with ok_to_retry %v", err, tc.wantRetry)
			}
		})
	}
}

// The director gets a SCSI hint's volume_id (vSphere and VirtualBox
// stemcells' agents resolve it) and no empty one for the other runtimes.
func TestHintMapCarriesVolumeIDOnlyWhenSet(t *testing.T) {
	cases := []struct {
		hint disk.Hint
		want string
	}{
		{disk.Hint{ID: "abc", Path: "/dev/vdc"}, `{"id":"abc","path":"/dev/vdc"}`},
		{disk.Hint{VolumeID: "2", Path: "/dev/sdc"}, `{"id":"","path":"/dev/sdc","volume_id":"2"}`},
	}
	for _, c := range cases {
		raw, _ := json.Marshal(apiv1.NewDiskHintFromMap(hintMap(c.hint)))
		if string(raw) != c.want {
			t.Errorf("hint %+v reaches the director as %s; want %s", c.hint, raw, c.want)
		}
	}
}
