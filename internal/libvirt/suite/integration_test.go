package suite

// Stemcells and VMs. The guests need not boot: a blank stemcell leaves
// QEMU in the firmware, which is all these need.

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/configdrive"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

func TestStemcellImportAndDelete(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cid := e.importStemcell(1 << 30)

	sc, err := e.b.LookupStemcell(ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Format != "qcow2" || sc.Capacity != 1<<30 {
		t.Errorf("stemcell volume = %+v, want qcow2 of 1 GiB", sc)
	}
	if err := e.b.DeleteStemcell(ctx, cid); err != nil {
		t.Fatalf("DeleteStemcell: %v", err)
	}
	if err := e.b.DeleteStemcell(ctx, cid); !errors.Is(err, cpierr.ErrNotFound) {
		t.Errorf("second DeleteStemcell = %v, want ErrNotFound", err)
	}
}

func TestStemcellImportFailureLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	cid := stemcell.NewCID()
	// The stream claims more bytes than it has: the upload must fail.
	img := &stemcell.Image{Format: stemcell.FormatRaw, Size: 1 << 20, VirtualSize: 1 << 20, Reader: strings.NewReader("short")}
	if err := e.b.ImportStemcell(context.Background(), cid, img); err == nil {
		t.Fatal("ImportStemcell of a truncated stream succeeded")
	}
	for _, name := range e.volumeNames() {
		if name == cid {
			t.Errorf("volume %s left behind after a failed import", cid)
		}
	}
}

// TestVMDKImportFailureLeavesNothing: a vSphere stemcell's upload that
// fails leaves neither the staging VMDK nor the stemcell nor its record.
func TestVMDKImportFailureLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	cid := stemcell.NewCID()
	img := &stemcell.Image{Format: stemcell.FormatVMDK, Firmware: stemcell.FirmwareEFI, Size: 1 << 20, VirtualSize: 1 << 20, Reader: strings.NewReader("short")}
	if err := e.b.ImportStemcell(context.Background(), cid, img); err == nil {
		t.Fatal("ImportStemcell of a truncated VMDK stream succeeded")
	}
	names := e.volumeNames()
	for _, name := range storage.StemcellVolumeNames(cid) {
		if slices.Contains(names, name) {
			t.Errorf("volume %s left behind after a failed VMDK import (pool: %v)", name, names)
		}
	}
}

func TestStemcellImportCancelledLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cid := stemcell.NewCID()
	// The stream cancels the call once libvirt has taken its first bytes.
	const size = 8 << 20
	stream := io.MultiReader(io.LimitReader(zeros{}, 1<<20), cancelOnRead{cancel}, io.LimitReader(zeros{}, size-(1<<20)))
	img := &stemcell.Image{Format: stemcell.FormatRaw, Size: size, VirtualSize: size, Reader: stream}
	err := e.b.ImportStemcell(ctx, cid, img)
	if err == nil {
		t.Fatal("ImportStemcell went on after its context was cancelled")
	}
	t.Logf("cancelled import: %v", err)
	if slices.Contains(e.volumeNames(), cid) {
		t.Errorf("volume %s left behind after a cancelled import", cid)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// cancelOnRead cancels when read, and yields nothing.
type cancelOnRead struct{ cancel func() }

func (c cancelOnRead) Read([]byte) (int, error) {
	c.cancel()
	return 0, io.EOF
}

func TestVMLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	scCID := e.importStemcell(1 << 30)
	netName := e.isolatedNetwork()
	spec := e.vmSpec(scCID, netName)

	if err := e.createVM(e.b, &spec); err != nil {
		t.Fatalf("CreateVM: %v", err)
	}
	dom, err := e.ownedDomain(spec.CID)
	if err != nil {
		t.Fatalf("lookupOwnedDomain: %v", err)
	}
	if running, err := e.isRunning(dom); err != nil || !running {
		t.Fatalf("domain running = %v, %v; want running", running, err)
	}
	assertDomainXML(t, e, dom, spec, scCID)
	if autostart, err := e.conn.DomainGetAutostart(dom); err != nil || autostart != 1 {
		t.Errorf("domain autostart = %d, %v; want 1, so the VM comes back after a host reboot", autostart, err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.ConsoleDir(), spec.CID+".log")); err != nil {
		t.Errorf("console log: %v", err)
	}

	if has, err := e.b.HasVM(ctx, spec.CID); err != nil || !has {
		t.Errorf("HasVM(running) = %v, %v", has, err)
	}
	if err := e.b.DeleteStemcell(ctx, scCID); !errors.Is(err, cpierr.ErrInUse) {
		t.Errorf("DeleteStemcell of a stemcell in use = %v, want ErrInUse", err)
	}

	meta := vm.Metadata{"deployment": "cf", "job": "router", "index": "0", "director": "bosh"}
	if err := e.b.SetVMMetadata(ctx, spec.CID, meta); err != nil {
		t.Fatalf("SetVMMetadata: %v", err)
	}
	assertMetadata(t, e, dom, spec)

	// New settings of the same size: the drive is rewritten in place.
	// (Growing it under a running QEMU fails: after an upload libvirt
	// probes the volume as format iso and resizes iso volumes with
	// qemu-img, which QEMU's image lock refuses.)
	settings := e.settingsFor(spec)
	settings.Env = map[string]any{"rewritten": "yes"}
	if err := e.b.UpdateSettings(ctx, spec.CID, settings, nil); err != nil {
		t.Fatalf("UpdateSettings: %v", err)
	}
	assertConfigDriveHolds(t, e, spec.CID, settings)

	// The blank guest ignores ACPI, so this also covers the reset path.
	if err := e.b.RebootVM(ctx, spec.CID); err != nil {
		t.Fatalf("RebootVM: %v", err)
	}
	if running, _ := e.isRunning(dom); !running {
		t.Error("domain not running after RebootVM")
	}

	// A stopped VM is still a VM, can be rebooted (started) and deleted.
	if err := e.conn.DomainDestroy(dom); err != nil {
		t.Fatal(err)
	}
	if has, err := e.b.HasVM(ctx, spec.CID); err != nil || !has {
		t.Errorf("HasVM(stopped) = %v, %v", has, err)
	}
	if err := e.b.SetVMMetadata(ctx, spec.CID, vm.Metadata{"name": "stopped/1"}); err != nil {
		t.Errorf("SetVMMetadata on a stopped VM: %v", err)
	} else if def, err := e.domainXMLOrError(dom, golibvirt.DomainXMLInactive); err != nil || def.Title != "stopped/1" {
		t.Errorf("title after SetVMMetadata on a stopped VM = %v, %v", def, err)
	}
	if err := e.b.RebootVM(ctx, spec.CID); err != nil {
		t.Fatalf("RebootVM of a stopped VM: %v", err)
	}
	if err := e.conn.DomainDestroy(dom); err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteVM(ctx, spec.CID); err != nil {
		t.Fatalf("DeleteVM of a stopped VM: %v", err)
	}
	e.assertNothingLeftOf(spec.CID)
	if err := e.b.DeleteVM(ctx, spec.CID); !errors.Is(err, cpierr.ErrNotFound) {
		t.Errorf("second DeleteVM = %v, want ErrNotFound", err)
	}
	if has, err := e.b.HasVM(ctx, spec.CID); err != nil || has {
		t.Errorf("HasVM(deleted) = %v, %v", has, err)
	}
	if err := e.b.DeleteStemcell(ctx, scCID); err != nil {
		t.Errorf("DeleteStemcell once unused: %v", err)
	}
}

func assertDomainXML(t *testing.T, e *testEnv, dom golibvirt.Domain, spec vm.Spec, scCID string) {
	t.Helper()
	def, err := e.domainXMLOrError(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Devices.Interfaces) != 1 || def.Devices.Interfaces[0].MAC.Address != spec.NICs[0].MAC {
		t.Errorf("interfaces = %+v, want one with MAC %s", def.Devices.Interfaces, spec.NICs[0].MAC)
	}
	sc, err := e.b.LookupStemcell(context.Background(), scCID)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]libvirtxml.DomainDisk{}
	for _, d := range def.Devices.Disks {
		targets[d.Target.Dev] = d
	}
	root, ok := targets[hypervisor.QEMU.RootTarget]
	if !ok || root.Serial != disk.Serial(spec.CID+"-root") {
		t.Fatalf("root disk = %+v", root)
	}
	// The live XML shows the backing chain QEMU opened: the stemcell.
	if root.BackingStore == nil || root.BackingStore.Source == nil || root.BackingStore.Source.File == nil ||
		root.BackingStore.Source.File.File != sc.Path {
		t.Errorf("root backing store = %+v, want the stemcell volume %s", root.BackingStore, sc.Path)
	}
	if eph, ok := targets[hypervisor.QEMU.EphemeralTarget]; !ok || eph.Serial != disk.Serial(spec.CID+"-ephemeral") {
		t.Errorf("ephemeral disk = %+v", eph)
	}
	if cd, ok := targets[hypervisor.QEMU.ConfigDriveTarget]; !ok || cd.Device != "cdrom" || cd.Target.Bus != "sata" || cd.ReadOnly == nil {
		t.Errorf("config drive = %+v", cd)
	}
	doc, err := e.conn.DomainGetXMLDesc(dom, golibvirt.DomainXMLSecure)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(doc, "config-drive-secret") {
		t.Error("domain XML contains the config drive's secret")
	}
	if free := spareRootPorts(def); free < e.cfg.HotplugSlots {
		t.Errorf("%d spare pcie-root-ports, want at least %d", free, e.cfg.HotplugSlots)
	}
}

// spareRootPorts counts pcie-root-ports no device sits behind.
func spareRootPorts(def *libvirtxml.Domain) int {
	used := map[uint]bool{}
	mark := func(a *libvirtxml.DomainAddress) {
		if a != nil && a.PCI != nil && a.PCI.Bus != nil {
			used[*a.PCI.Bus] = true
		}
	}
	for _, d := range def.Devices.Disks {
		mark(d.Address)
	}
	for _, i := range def.Devices.Interfaces {
		mark(i.Address)
	}
	for _, r := range def.Devices.RNGs {
		mark(r.Address)
	}
	if def.Devices.MemBalloon != nil {
		mark(def.Devices.MemBalloon.Address)
	}
	spare := 0
	for _, c := range def.Devices.Controllers {
		if c.Model == "pcie-root-port" && c.Index != nil && !used[*c.Index] {
			spare++
		}
	}
	return spare
}

func assertMetadata(t *testing.T, e *testEnv, dom golibvirt.Domain, spec vm.Spec) {
	t.Helper()
	for _, flags := range []golibvirt.DomainXMLFlags{0, golibvirt.DomainXMLInactive} {
		def, err := e.domainXMLOrError(dom, flags)
		if err != nil {
			t.Fatal(err)
		}
		if def.Title != "cf/router/0" {
			t.Errorf("title (flags %d) = %q, want cf/router/0", flags, def.Title)
		}
		if !strings.Contains(def.Description, "job=router") {
			t.Errorf("description (flags %d) = %q", flags, def.Description)
		}
	}
	if virsh, err := exec.LookPath("virsh"); err == nil {
		out, err := exec.Command(virsh, "-c", e.cfg.URI, "list", "--all", "--title").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "cf/router/0") {
			t.Errorf("virsh list --title does not show cf/router/0 (%v):\n%s", err, out)
		}
	}
	marker, err := e.marker(dom)
	if err != nil {
		t.Fatal(err)
	}
	if marker.AgentID != spec.AgentID || marker.StemcellCID != spec.StemcellCID || len(marker.Tags) != 4 {
		t.Errorf("marker after SetVMMetadata = %+v", marker)
	}
}

func assertConfigDriveHolds(t *testing.T, e *testEnv, vmCID string, settings agentsettings.Settings) {
	t.Helper()
	ctx := context.Background()
	vol, err := e.b.LookupVolume(ctx, xmldef.ConfigDriveVolumeName(vmCID))
	if err != nil {
		t.Fatal(err)
	}
	iso, err := e.b.ReadVolume(ctx, vol)
	if err != nil {
		t.Fatal(err)
	}
	if capacity, err := e.b.VolumeCapacity(vol); err != nil || capacity != uint64(len(iso)) {
		t.Errorf("config drive volume of %d bytes holds an ISO of %d, %v; want it sized to fit exactly", capacity, len(iso), err)
	}
	raw, err := configdrive.ReadUserData(iso)
	if err != nil {
		t.Fatal(err)
	}
	var got agentsettings.Settings
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.AgentID != settings.AgentID || got.Env["rewritten"] != settings.Env["rewritten"] {
		t.Errorf("the config drive holds settings for agent %q with env %d keys; want the updated ones", got.AgentID, len(got.Env))
	}
}

func TestDeleteVMKeepsPersistentDisksAndSurvivesHalfDeletion(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	scCID := e.importStemcell(1 << 30)
	spec := e.vmSpec(scCID, e.isolatedNetwork())
	diskCID := e.newDisk(16, disk.FormatQcow2)
	spec.Disks = []vm.AttachedDisk{{DiskCID: diskCID, Target: "vdc"}}
	if err := e.createVM(e.b, &spec); err != nil {
		t.Fatalf("CreateVM with a persistent disk: %v", err)
	}
	// Half-deleted earlier: the ephemeral volume is already gone.
	if err := e.b.DeleteVolumeIfExists(ctx, xmldef.EphemeralVolumeName(spec.CID)); err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteVM(ctx, spec.CID); err != nil {
		t.Fatalf("DeleteVM: %v", err)
	}
	e.assertNothingLeftOf(spec.CID)
	if _, err := e.b.LookupVolume(ctx, diskCID); err != nil {
		t.Errorf("persistent disk %s was removed with the VM: %v", diskCID, err)
	}
}

func TestForeignDomainIsNeverTouched(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	name := vm.NewCID()
	// It uses one of our disks: the runtime must not see it as a holder.
	foreignDisk := e.newDisk(16, disk.FormatQcow2)
	foreign := libvirtxml.Domain{
		Type:    "qemu",
		Name:    name,
		Memory:  &libvirtxml.DomainMemory{Value: 32, Unit: "MiB"},
		OS:      &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm"}},
		Devices: &libvirtxml.DomainDeviceList{Disks: []libvirtxml.DomainDisk{xmldef.PersistentDiskDevice(e.diskPath(foreignDisk), disk.FormatQcow2, foreignDisk, "vdc")}},
	}
	doc, err := foreign.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.conn.DomainDefineXML(doc); err != nil {
		t.Fatalf("defining a foreign domain: %v", err)
	}
	e.trackDomain(name)

	if has, err := e.b.HasVM(ctx, name); err != nil || has {
		t.Errorf("HasVM(foreign) = %v, %v; want false", has, err)
	}
	if err := e.b.DeleteVM(ctx, name); !errors.Is(err, cpierr.ErrNotFound) {
		t.Errorf("DeleteVM(foreign) = %v, want ErrNotFound", err)
	}
	for _, call := range []func() error{
		func() error { return e.b.RebootVM(ctx, name) },
		func() error { return e.b.SetVMMetadata(ctx, name, vm.Metadata{"a": "b"}) },
		func() error { return e.b.UpdateSettings(ctx, name, agentsettings.Settings{}, nil) },
	} {
		if err := call(); !errors.Is(err, cpierr.ErrNotFound) {
			t.Errorf("call on a foreign domain = %v, want ErrNotFound", err)
		}
	}
	if _, err := e.conn.DomainLookupByName(name); err != nil {
		t.Errorf("foreign domain is gone: %v", err)
	}
	if holders, err := e.b.DiskHolders(ctx, foreignDisk); err != nil || len(holders) != 0 {
		t.Errorf("DiskHolders of a disk only the foreign domain uses = %v, %v; want none", holders, err)
	}
}

func TestFailedCreateVMLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	scCID := e.importStemcell(1 << 30)
	netName := e.isolatedNetwork()

	cases := []struct {
		name   string
		mutate func(*vm.Spec)
		want   string
	}{
		{"missing network", func(s *vm.Spec) { s.NICs[0].LibvirtNetwork = "bosh-test-no-such-net" }, "bosh-test-no-such-net"},
		{"missing stemcell", func(s *vm.Spec) { s.StemcellCID = stemcell.NewCID() }, "stemcell"},
		// Fails after the three volumes were made.
		{"missing persistent disk", func(s *vm.Spec) { s.Disks = []vm.AttachedDisk{{DiskCID: disk.NewCID(), Target: "vdc"}} }, "persistent disk"},
		// Fails at define (libvirt's schema check), after volumes and
		// console dir were made.
		{"libvirt refuses to define", func(s *vm.Spec) { s.Props.CPUs = 0 }, "defining domain"},
		// Fails at start, after the domain was defined: QEMU cannot give
		// a guest more RAM than its physical address bits reach.
		{"QEMU refuses to start", func(s *vm.Spec) { s.Props.MemoryMiB = 8 << 20 }, "starting domain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := e.vmSpec(scCID, netName)
			c.mutate(&spec)
			err := e.createVM(e.b, &spec)
			if err == nil {
				t.Fatal("CreateVM succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			e.assertNothingLeftOf(spec.CID)
		})
	}
}

func TestParallelCreateAndDeleteVMs(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	scCID := e.importStemcell(1 << 30)
	netName := e.isolatedNetwork()
	const n = 8
	specs := make([]vm.Spec, n)
	for i := range specs {
		specs[i] = e.vmSpec(scCID, netName)
	}
	runAll := func(what string, call func(*libvirt.Backend, vm.Spec) error) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range specs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = call(e.OpenBackend(), specs[i]) // one connection each, like separate processes
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s %s: %v", what, specs[i].CID, err)
			}
		}
	}
	runAll("CreateVM", func(b *libvirt.Backend, s vm.Spec) error { return e.createVM(b, &s) })
	runAll("DeleteVM", func(b *libvirt.Backend, s vm.Spec) error { return b.DeleteVM(ctx, s.CID) })
	for _, s := range specs {
		e.assertNothingLeftOf(s.CID)
	}
}
