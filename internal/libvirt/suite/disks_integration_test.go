package suite

// Persistent disks against a real libvirtd (BOSH_LIBVIRT_CPI_URI). The
// domains here are minimal ones of our own: q35 under TCG, a blank qcow2
// root, the spare PCIe root ports production VMs get, and our ownership
// marker. With nothing to boot they sit in SeaBIOS, which is enough for
// libvirt and QEMU to plug, unplug and copy disks.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"

	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/storage"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// diskTestRootPorts matches the default hotplug_slots plus the root disk.
const diskTestRootPorts = config.DefaultHotplugSlots + 1

// guestKind is what runs in a disk test domain.
type guestKind int

const (
	// stoppedFirmware is defined, not started.
	stoppedFirmware guestKind = iota
	// runningFirmware sits in SeaBIOS: it never acknowledges a PCIe unplug.
	runningFirmware
	// runningLinux boots the host's kernel with a busybox initramfs that
	// only sleeps: the kernel's pciehp acknowledges unplugs as a BOSH
	// stemcell would.
	runningLinux
)

// diskTestDomain defines a minimal domain of ours, started unless kind is
// stoppedFirmware, and removed at the end of the test.
func (e *testEnv) diskTestDomain(kind guestKind) golibvirt.Domain {
	e.t.Helper()
	ctx := context.Background()
	cid := vm.NewCID()
	e.trackDomain(cid)
	root, err := e.b.CreateVolume(ctx, libvirtxml.StorageVolume{
		Name:     xmldef.RootVolumeName(cid),
		Capacity: &libvirtxml.StorageVolumeSize{Value: 64, Unit: "MiB"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	rootPath, err := e.b.VolumePath(root)
	if err != nil {
		e.t.Fatal(err)
	}
	marker, err := xmldef.Marker{AgentID: "agent-disk-test", StemcellCID: "none"}.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	def := libvirtxml.Domain{
		Type:     "qemu",
		Name:     cid,
		Metadata: &libvirtxml.DomainMetadata{XML: marker},
		Memory:   &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: 1},
		OS:       &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"}},
		Devices: &libvirtxml.DomainDeviceList{
			Disks:       []libvirtxml.DomainDisk{xmldef.FileDiskDevice(rootPath, "qcow2", disk.Serial(xmldef.RootVolumeName(cid)), hypervisor.QEMU.RootTarget)},
			Controllers: xmldef.ControllersFor("q35", diskTestRootPorts),
		},
	}
	console := filepath.Join(e.cfg.ConsoleDir(), cid+".log")
	if kind == runningLinux {
		e.bootLinux(&def, console)
	}
	doc, err := def.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	dom, err := e.conn.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
	if err != nil {
		e.t.Fatalf("defining test domain %s: %v", cid, err)
	}
	if kind == stoppedFirmware {
		return dom
	}
	if err := e.conn.DomainCreate(dom); err != nil {
		e.t.Fatalf("starting test domain %s: %v", cid, err)
	}
	if kind == runningLinux {
		waitForConsole(e.t, console, guestReady)
	}
	return dom
}

// guestReady is what the test initramfs prints once the kernel is up.
const guestReady = "BOSH-DISK-TEST-GUEST-READY"

// bootLinux makes def boot the host's kernel directly into an initramfs
// that prints guestReady to the serial console and sleeps.
func (e *testEnv) bootLinux(def *libvirtxml.Domain, console string) {
	e.t.Helper()
	kernel := hostKernelPath(e.t)
	def.Memory = &libvirtxml.DomainMemory{Value: 256, Unit: "MiB"}
	def.OS.Kernel = kernel
	def.OS.Initrd = sleeperInitramfs(e.t, e.cfg.StoreDir)
	def.OS.Cmdline = "console=ttyS0 panic=-1 loglevel=4"
	def.CPU = xmldef.CPUFor("qemu")
	// Without ACPI the kernel gets no hot-plug control of the root ports.
	def.Features = &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}}
	if err := os.MkdirAll(filepath.Dir(console), 0o711); err != nil {
		e.t.Fatal(err)
	}
	def.Devices.Serials = []libvirtxml.DomainSerial{xmldef.ConsoleSerial(console)}
}

// hostKernelPath is a kernel image of the host; scripts/host.sh installs
// one, so its absence is a broken setup, not a reason to skip.
func hostKernelPath(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(matches) == 0 {
		t.Fatal("no /boot/vmlinuz-* on this host (scripts/host.sh install, or apt-get install linux-image-amd64): a guest OS is needed to acknowledge hot-unplug")
	}
	slices.Sort(matches)
	return matches[len(matches)-1]
}

// sleeperInitramfs builds a newc cpio with busybox and an /init script.
func sleeperInitramfs(t *testing.T, dir string) string {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not installed (scripts/host.sh install, or apt-get install busybox-static)")
	}
	root := filepath.Join(dir, "initramfs-root")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", busybox, filepath.Join(root, "bin", "busybox")).CombinedOutput(); err != nil {
		t.Fatalf("copying busybox: %v: %s", err, out)
	}
	init := "#!/bin/busybox sh\n" +
		"/bin/busybox mkdir -p /dev /proc /sys\n" +
		"/bin/busybox mount -t devtmpfs dev /dev\n" +
		"echo " + guestReady + " > /dev/ttyS0\n" +
		"exec /bin/busybox sleep 2147483647\n"
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(init), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initramfs.cpio")
	cmd := exec.Command("sh", "-c", "find . | cpio --quiet -o -H newc > "+out)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building initramfs: %v: %s", err, msg)
	}
	if err := os.Chmod(out, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitForConsole polls the console log until it holds want. The bound is
// generous: it only turns a guest that never boots into a failure.
func waitForConsole(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		raw, _ := os.ReadFile(path)
		if strings.Contains(string(raw), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("guest did not print %q to %s; console so far:\n%s", want, path, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// newDisk creates a disk of sizeMiB in format and returns its CID.
func (e *testEnv) newDisk(sizeMiB int, format disk.Format) string {
	e.t.Helper()
	cid := disk.NewCID()
	if err := e.b.CreateDisk(context.Background(), disk.Spec{CID: cid, SizeMiB: sizeMiB, Format: format}); err != nil {
		e.t.Fatalf("CreateDisk: %v", err)
	}
	return cid
}

// domainXML reads dom's live (flags 0) or persistent definition.
func (e *testEnv) domainXML(dom golibvirt.Domain, flags golibvirt.DomainXMLFlags) *libvirtxml.Domain {
	e.t.Helper()
	def, err := e.domainXMLOrError(dom, flags)
	if err != nil {
		e.t.Fatal(err)
	}
	return def
}

// diskPath is the path of the volume called name.
func (e *testEnv) diskPath(name string) string {
	e.t.Helper()
	vol, err := e.b.LookupVolume(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.b.VolumePath(vol)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// assertAttachedAt checks the disk is in dom's definition (and live XML
// when live) at target, with its serial, path and format.
func (e *testEnv) assertAttachedAt(dom golibvirt.Domain, diskCID, target string, format disk.Format, live bool) {
	e.t.Helper()
	flags := []golibvirt.DomainXMLFlags{golibvirt.DomainXMLInactive}
	if live {
		flags = append(flags, 0)
	}
	for _, f := range flags {
		dev := xmldef.FindDisk(e.domainXML(dom, f), diskCID, "")
		switch {
		case dev == nil:
			e.t.Errorf("disk %s not in XML (flags %d) of %s", diskCID, f, dom.Name)
		case xmldef.TargetOf(*dev) != target:
			e.t.Errorf("disk %s at target %s in XML (flags %d), want %s", diskCID, xmldef.TargetOf(*dev), f, target)
		case xmldef.DiskSourcePath(*dev) != e.diskPath(diskCID):
			e.t.Errorf("disk %s source %s, want %s", diskCID, xmldef.DiskSourcePath(*dev), e.diskPath(diskCID))
		case dev.Driver == nil || dev.Driver.Type != string(format):
			e.t.Errorf("disk %s driver %+v, want type %s", diskCID, dev.Driver, format)
		case dev.Target.Bus != "virtio" || disk.ByIDPrefix+dev.Serial != diskCID:
			e.t.Errorf("disk %s bus %s serial %q, want virtio and the serial that makes the by-id link the CID", diskCID, dev.Target.Bus, dev.Serial)
		}
	}
}

// assertDetached checks the disk is in neither definition of dom.
func (e *testEnv) assertDetached(dom golibvirt.Domain, diskCID string) {
	e.t.Helper()
	for _, f := range []golibvirt.DomainXMLFlags{golibvirt.DomainXMLInactive, 0} {
		if dev := xmldef.FindDisk(e.domainXML(dom, f), diskCID, ""); dev != nil {
			e.t.Errorf("disk %s still in XML (flags %d) of %s at %s", diskCID, f, dom.Name, xmldef.TargetOf(*dev))
		}
	}
}

// assertNoDiskVolumes fails when any disk, snapshot or metadata volume is
// left in the pool.
func (e *testEnv) assertNoDiskVolumes() {
	e.t.Helper()
	for _, name := range e.volumeNames() {
		if strings.HasPrefix(name, "disk-") || strings.HasPrefix(name, "snap-") || strings.HasSuffix(name, storage.MetaVolumeName("")) {
			e.t.Errorf("volume %s is left in the pool", name)
		}
	}
}

func wantErr(t *testing.T, what string, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: got error %v, want %v", what, err, sentinel)
	}
}

func TestDiskCreateHasDelete(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for _, format := range []disk.Format{"", disk.FormatQcow2, disk.FormatRaw} {
		cid := e.newDisk(100, format)
		if ok, err := e.b.HasDisk(ctx, cid); err != nil || !ok {
			t.Fatalf("HasDisk(%s) = %v, %v; want true", cid, ok, err)
		}
		d, err := e.b.FindVolume(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		want := format
		if want == "" {
			want = disk.FormatQcow2
		}
		if d.Format != want || d.Capacity != 100*storage.MiB {
			t.Errorf("disk %s: format %s capacity %d, want %s and %d", cid, d.Format, d.Capacity, want, 100*storage.MiB)
		}
		if err := e.b.SetDiskMetadata(ctx, cid, disk.Metadata{"director": "d"}); err != nil {
			t.Fatal(err)
		}
		if err := e.b.DeleteDisk(ctx, cid); err != nil {
			t.Fatalf("DeleteDisk: %v", err)
		}
		if ok, err := e.b.HasDisk(ctx, cid); err != nil || ok {
			t.Errorf("HasDisk after delete = %v, %v; want false", ok, err)
		}
		wantErr(t, "DeleteDisk again", e.b.DeleteDisk(ctx, cid), cpierr.ErrNotFound)
	}
	e.assertNoDiskVolumes()
}

func TestDiskCreateLargerThanPoolIsNoSpace(t *testing.T) {
	e := newTestEnv(t)
	cid := disk.NewCID()
	err := e.b.CreateDisk(context.Background(), disk.Spec{CID: cid, SizeMiB: 1 << 30, Format: disk.FormatRaw}) // 1 PiB
	wantErr(t, "CreateDisk of 1 PiB", err, cpierr.ErrNoSpace)
	e.assertNoDiskVolumes()
}

// Reading a sidecar streams it from libvirtd; now and then that stream
// ends or stalls before its first byte (go-libvirt and libvirtd race at a
// stream's end), which once hung a call forever. Many write-then-read
// rounds, each bounded, must all read back what was written.
func TestDiskMetadataReadsBackUnderRepetition(t *testing.T) {
	e := newTestEnv(t)
	cid := e.newDisk(1, disk.FormatRaw)
	const rounds = 300
	for i := range rounds {
		want := disk.Metadata{"round": strconv.Itoa(i)}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := e.b.SetDiskMetadata(ctx, cid, want)
		var got disk.Metadata
		if err == nil {
			got, err = e.b.GetDiskMetadata(ctx, cid)
		}
		cancel()
		if err != nil {
			t.Fatalf("round %d of %d: %v", i, rounds, err)
		}
		if got["round"] != want["round"] {
			t.Fatalf("round %d of %d: read back %v, want %v", i, rounds, got, want)
		}
	}
}

func TestDiskMetadataRoundTripSurvivesLossOfStoreDir(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	cid := e.newDisk(10, disk.FormatQcow2)
	got, err := e.b.GetDiskMetadata(ctx, cid)
	if err != nil || len(got) != 0 {
		t.Fatalf("metadata before any set = %v, %v; want empty", got, err)
	}
	big := disk.Metadata{"long": strings.Repeat("x", 10000), "deployment": "cf"}
	small := disk.Metadata{"deployment": "cf", "instance_group": "db", "quote": `"a\nb"`}
	for _, meta := range []disk.Metadata{small, big, small} {
		if err := e.b.SetDiskMetadata(ctx, cid, meta); err != nil {
			t.Fatal(err)
		}
		got, err := e.b.GetDiskMetadata(ctx, cid)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(meta) {
			t.Errorf("metadata round trip: got %v, want %v", got, meta)
		}
	}
	// Another CPI install on the same libvirtd, with a fresh store_dir,
	// sees the same metadata: it lives in the pool, not in store_dir.
	other := e.cfg
	other.StoreDir = traversableTempDir(t)
	b2, err := libvirt.Open(ctx, other, e.log)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	got, err = b2.GetDiskMetadata(ctx, cid)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(small) {
		t.Errorf("metadata through a fresh store_dir = %v, %v; want %v", got, err, small)
	}
	unknown := disk.NewCID()
	wantErr(t, "SetDiskMetadata of unknown disk", e.b.SetDiskMetadata(ctx, unknown, small), cpierr.ErrNotFound)
	_, err = e.b.GetDiskMetadata(ctx, unknown)
	wantErr(t, "GetDiskMetadata of unknown disk", err, cpierr.ErrNotFound)
	if slices.Contains(e.volumeNames(), storage.MetaVolumeName(unknown)) {
		t.Errorf("metadata volume made for an unknown disk")
	}
	if err := e.b.DeleteDisk(ctx, cid); err != nil {
		t.Fatal(err)
	}
	e.assertNoDiskVolumes()
}

func TestAttachDetachRunningDomain(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	dom := e.diskTestDomain(runningLinux)
	other := e.diskTestDomain(runningLinux)
	cid := e.newDisk(64, disk.FormatQcow2)

	target, err := e.attach(ctx, dom.Name, cid)
	if err != nil {
		t.Fatalf("AttachDisk: %v", err)
	}
	if target != "vdc" {
		t.Errorf("first persistent disk at %s, want vdc", target)
	}
	e.assertAttachedAt(dom, cid, target, disk.FormatQcow2, true)
	again, err := e.attach(ctx, dom.Name, cid)
	if err != nil || again != target {
		t.Errorf("second AttachDisk = %s, %v; want %s, nil (idempotent)", again, err, target)
	}
	if got, err := e.b.AttachedDisks(ctx, dom.Name); err != nil || !slices.Equal(got, []string{cid}) {
		t.Errorf("AttachedDisks = %v, %v; want [%s]", got, err, cid)
	}

	_, err = e.attach(ctx, other.Name, cid)
	wantErr(t, "AttachDisk to a second VM", err, cpierr.ErrInUse)
	if err != nil && !strings.Contains(err.Error(), dom.Name) {
		t.Errorf("in-use error does not name the VM holding the disk: %v", err)
	}
	err = e.b.DeleteDisk(ctx, cid)
	wantErr(t, "DeleteDisk while attached", err, cpierr.ErrInUse)
	if err != nil && !strings.Contains(err.Error(), dom.Name) {
		t.Errorf("in-use error does not name the VM: %v", err)
	}
	if ok, _ := e.b.HasDisk(ctx, cid); !ok {
		t.Fatal("refused DeleteDisk removed the disk")
	}
	wantErr(t, "ResizeDisk while attached", e.b.ResizeDisk(ctx, cid, 128), cpierr.ErrNotSupported)

	if err := e.b.DetachDisk(ctx, dom.Name, cid); err != nil {
		t.Fatalf("DetachDisk: %v", err)
	}
	e.assertDetached(dom, cid)
	if got, err := e.b.AttachedDisks(ctx, dom.Name); err != nil || len(got) != 0 {
		t.Errorf("AttachedDisks after detach = %v, %v; want none", got, err)
	}
	wantErr(t, "DetachDisk again", e.b.DetachDisk(ctx, dom.Name, cid), cpierr.ErrNotAttached)

	// Now free, it goes to the other VM.
	if _, err := e.attach(ctx, other.Name, cid); err != nil {
		t.Fatalf("AttachDisk to the second VM after detach: %v", err)
	}
	if err := e.b.DetachDisk(ctx, other.Name, cid); err != nil {
		t.Fatal(err)
	}
	if err := e.b.DeleteDisk(ctx, cid); err != nil {
		t.Fatal(err)
	}
	e.assertNoDiskVolumes()
}

func TestAttachToStoppedDomainSurvivesStart(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	dom := e.diskTestDomain(stoppedFirmware)
	raw := e.newDisk(16, disk.FormatRaw)
	target, err := e.attach(ctx, dom.Name, raw)
	if err != nil {
		t.Fatalf("AttachDisk to stopped VM: %v", err)
	}
	e.assertAttachedAt(dom, raw, target, disk.FormatRaw, false)
	wantErr(t, "DeleteDisk while in a stopped VM's definition", e.b.DeleteDisk(ctx, raw), cpierr.ErrInUse)
	if err := e.conn.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	e.assertAttachedAt(dom, raw, target, disk.FormatRaw, true)
	// A second disk goes to the next target, live and persistent.
	qcow := e.newDisk(16, disk.FormatQcow2)
	target2, err := e.attach(ctx, dom.Name, qcow)
	if err != nil {
		t.Fatal(err)
	}
	if target2 == target {
		t.Errorf("second disk got the same target %s", target)
	}
	// Restart: both are still there.
	if err := e.conn.DomainDestroy(dom); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	e.assertAttachedAt(dom, raw, target, disk.FormatRaw, true)
	e.assertAttachedAt(dom, qcow, target2, disk.FormatQcow2, true)
	if err := e.conn.DomainDestroy(dom); err != nil {
		t.Fatal(err)
	}
	for _, cid := range []string{raw, qcow} {
		if err := e.b.DetachDisk(ctx, dom.Name, cid); err != nil {
			t.Fatalf("DetachDisk from stopped VM: %v", err)
		}
		if err := e.b.DeleteDisk(ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	e.assertNoDiskVolumes()
}

// TestAttachManyDisksToRunningDomain hot-plugs more disks than BOSH ever
// attaches to one VM, then unplugs them, and logs the latencies.
func TestAttachManyDisksToRunningDomain(t *testing.T) {
	const count = 22
	e := newTestEnv(t)
	ctx := context.Background()
	dom := e.diskTestDomain(runningLinux)
	var cids []string
	var attaches, detaches []time.Duration
	targets := map[string]bool{}
	for i := range count {
		cid := e.newDisk(8, disk.FormatQcow2)
		cids = append(cids, cid)
		start := time.Now()
		target, err := e.attach(ctx, dom.Name, cid)
		if err != nil {
			t.Fatalf("attaching disk %d: %v", i+1, err)
		}
		attaches = append(attaches, time.Since(start))
		want, _ := hypervisor.QEMU.PersistentTarget(i)
		if target != want || targets[target] {
			t.Errorf("disk %d at %s, want %s (unique)", i+1, target, want)
		}
		targets[target] = true
	}
	live := e.domainXML(dom, 0)
	if got := xmldef.PersistentDiskCIDs(live); len(got) != count {
		t.Errorf("live domain has %d persistent disks, want %d", len(got), count)
	}
	got, err := e.b.AttachedDisks(ctx, dom.Name)
	if err != nil || !slices.Equal(got, cids) {
		t.Errorf("AttachedDisks = %v, %v; want %v", got, err, cids)
	}
	for _, cid := range cids {
		start := time.Now()
		if err := e.b.DetachDisk(ctx, dom.Name, cid); err != nil {
			t.Fatalf("DetachDisk %s: %v", cid, err)
		}
		detaches = append(detaches, time.Since(start))
		if err := e.b.DeleteDisk(ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("MEASURE %d disks on a running TCG q35 domain: attach_disk median %v (min %v, max %v); detach_disk median %v (min %v, max %v)",
		count, median(attaches), slices.Min(attaches), slices.Max(attaches), median(detaches), slices.Min(detaches), slices.Max(detaches))
	e.assertNoDiskVolumes()
}

func TestResizeDisk(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for _, format := range []disk.Format{disk.FormatQcow2, disk.FormatRaw} {
		cid := e.newDisk(32, format)
		if err := e.b.ResizeDisk(ctx, cid, 32); err != nil {
			t.Errorf("ResizeDisk to the same size: %v", err)
		}
		if err := e.b.ResizeDisk(ctx, cid, 96); err != nil {
			t.Fatalf("ResizeDisk grow %s: %v", format, err)
		}
		d, err := e.b.FindVolume(ctx, cid)
		if err != nil || d.Capacity != 96*storage.MiB {
			t.Errorf("%s disk after grow: %d bytes, %v; want %d", format, d.Capacity, err, 96*storage.MiB)
		}
		err = e.b.ResizeDisk(ctx, cid, 64)
		if err == nil || errors.Is(err, cpierr.ErrNotSupported) || !strings.Contains(err.Error(), "shrink") {
			t.Errorf("ResizeDisk shrink: got %v, want a plain error about shrinking", err)
		}
		wantErr(t, "ResizeDisk beyond the pool", e.b.ResizeDisk(ctx, cid, 1<<30), cpierr.ErrNoSpace)
		if d, _ := e.b.FindVolume(ctx, cid); d.Capacity != 96*storage.MiB {
			t.Errorf("failed resizes changed the size to %d", d.Capacity)
		}
		if err := e.b.DeleteDisk(ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	e.assertNoDiskVolumes()
}

// pattern is n bytes that differ per seed and per position.
func pattern(seed byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed ^ byte(i*7+i/4096)
	}
	return p
}

// fillDisk writes data as the guest-visible content of the disk: as is
// for raw, wrapped into a qcow2 image by qemu-img for qcow2.
func (e *testEnv) fillDisk(cid string, format disk.Format, data []byte) {
	e.t.Helper()
	ctx := context.Background()
	image := data
	if format == disk.FormatQcow2 {
		image = convertImage(e.t, data, "raw", "qcow2")
	}
	vol, err := e.b.LookupVolume(ctx, cid)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.b.UploadVolume(ctx, vol, bytes.NewReader(image), uint64(len(image))); err != nil {
		e.t.Fatal(err)
	}
}

// diskContent downloads a volume and returns its guest-visible content.
func (e *testEnv) diskContent(cid string, format disk.Format) []byte {
	e.t.Helper()
	ctx := context.Background()
	vol, err := e.b.LookupVolume(ctx, cid)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := e.b.ReadVolume(ctx, vol)
	if err != nil {
		e.t.Fatal(err)
	}
	if format == disk.FormatQcow2 {
		return convertImage(e.t, data, "qcow2", "raw")
	}
	return data
}

// convertImage runs qemu-img convert on in-memory images.
func convertImage(t *testing.T, data []byte, from, to string) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command("qemu-img", "convert", "-f", from, "-O", to, in, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s -> %s: %v: %s", from, to, err, msg)
	}
	converted, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return converted
}

// assertRestorable checks snapshot holds want, while the disk has moved on.
func (e *testEnv) assertRestorable(diskCID, snapCID string, format disk.Format, want []byte) {
	e.t.Helper()
	e.fillDisk(diskCID, format, pattern(0xFF, len(want)))
	if got := e.diskContent(diskCID, format); !bytes.Equal(got, pattern(0xFF, len(want))) {
		e.t.Fatalf("overwriting the disk did not take")
	}
	got := e.diskContent(snapCID, format)
	if !bytes.Equal(got, want) {
		e.t.Errorf("snapshot %s of %s disk does not hold the data at snapshot time (%d bytes, first difference at %d)",
			snapCID, format, len(got), firstDifference(got, want))
	}
}

func firstDifference(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestSnapshotOfDetachedDiskIsRestorable(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	for _, format := range []disk.Format{disk.FormatRaw, disk.FormatQcow2} {
		cid := e.newDisk(4, format)
		data := pattern(0x5A, 4*storage.MiB)
		e.fillDisk(cid, format, data)
		snap := disk.NewSnapshotCID()
		meta := disk.Metadata{"deployment": "cf", "director_name": "bosh"}
		if err := e.b.SnapshotDisk(ctx, cid, snap, meta); err != nil {
			t.Fatalf("SnapshotDisk %s: %v", format, err)
		}
		e.assertRestorable(cid, snap, format, data)
		doc, err := e.snapshotMetadata(ctx, snap)
		if err != nil || doc.SnapshotOf != cid || fmt.Sprint(doc.Metadata) != fmt.Sprint(meta) {
			t.Errorf("snapshot metadata = %+v, %v; want %v of %s", doc, err, meta, cid)
		}
		if err := e.b.DeleteSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		wantErr(t, "DeleteSnapshot again", e.b.DeleteSnapshot(ctx, snap), cpierr.ErrNotFound)
		if err := e.b.DeleteDisk(ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	e.assertNoDiskVolumes()
}

func TestSnapshotOfDiskInRunningDomainIsRestorable(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	dom := e.diskTestDomain(runningLinux)
	for _, format := range []disk.Format{disk.FormatRaw, disk.FormatQcow2} {
		cid := e.newDisk(4, format)
		data := pattern(0xA5, 4*storage.MiB)
		e.fillDisk(cid, format, data)
		target, err := e.attach(ctx, dom.Name, cid)
		if err != nil {
			t.Fatal(err)
		}
		snap := disk.NewSnapshotCID()
		if err := e.b.SnapshotDisk(ctx, cid, snap, disk.Metadata{"k": "v"}); err != nil {
			t.Fatalf("SnapshotDisk of %s disk in running VM: %v", format, err)
		}
		if running, _ := e.isRunning(dom); !running {
			t.Fatal("domain stopped during the snapshot")
		}
		e.assertAttachedAt(dom, cid, target, format, true)
		if err := e.b.DetachDisk(ctx, dom.Name, cid); err != nil {
			t.Fatal(err)
		}
		e.assertRestorable(cid, snap, format, data)
		if err := e.b.DeleteSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		if err := e.b.DeleteDisk(ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	e.assertNoDiskVolumes()
}

func TestUnknownCIDsAreNotFound(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	dom := e.diskTestDomain(stoppedFirmware)
	known := e.newDisk(4, disk.FormatQcow2)
	unknownDisk, unknownVM, unknownSnap := disk.NewCID(), vm.NewCID(), disk.NewSnapshotCID()

	_, err := e.attach(ctx, dom.Name, unknownDisk)
	wantErr(t, "AttachDisk of unknown disk", err, cpierr.ErrNotFound)
	_, err = e.attach(ctx, unknownVM, known)
	wantErr(t, "AttachDisk to unknown VM", err, cpierr.ErrNotFound)
	wantErr(t, "DetachDisk from unknown VM", e.b.DetachDisk(ctx, unknownVM, known), cpierr.ErrNotFound)
	wantErr(t, "DetachDisk of unknown disk", e.b.DetachDisk(ctx, dom.Name, unknownDisk), cpierr.ErrNotAttached)
	_, err = e.b.AttachedDisks(ctx, unknownVM)
	wantErr(t, "AttachedDisks of unknown VM", err, cpierr.ErrNotFound)
	wantErr(t, "ResizeDisk of unknown disk", e.b.ResizeDisk(ctx, unknownDisk, 10), cpierr.ErrNotFound)
	wantErr(t, "SnapshotDisk of unknown disk", e.b.SnapshotDisk(ctx, unknownDisk, unknownSnap, nil), cpierr.ErrNotFound)
	wantErr(t, "DeleteSnapshot of unknown snapshot", e.b.DeleteSnapshot(ctx, unknownSnap), cpierr.ErrNotFound)
	wantErr(t, "DeleteDisk of unknown disk", e.b.DeleteDisk(ctx, unknownDisk), cpierr.ErrNotFound)
	if err := e.b.DeleteDisk(ctx, known); err != nil {
		t.Fatal(err)
	}
	e.assertNoDiskVolumes()
}

// TestDetachFromGuestThatNeverAcknowledges: a domain in firmware never
// releases a hot-unplugged disk. Detach says so, the disk is already out
// of the definition, nothing can take or delete it while QEMU still
// holds it, and a restart completes the detach.
func TestDetachFromGuestThatNeverAcknowledges(t *testing.T) {
	saved := libvirt.DetachTimeout
	libvirt.DetachTimeout = 3 * time.Second
	t.Cleanup(func() { libvirt.DetachTimeout = saved })
	e := newTestEnv(t)
	ctx := context.Background()
	dom := e.diskTestDomain(runningFirmware)
	other := e.diskTestDomain(stoppedFirmware)
	cid := e.newDisk(8, disk.FormatQcow2)
	target, err := e.attach(ctx, dom.Name, cid)
	if err != nil {
		t.Fatal(err)
	}
	err = e.b.DetachDisk(ctx, dom.Name, cid)
	wantErr(t, "DetachDisk from a guest that never acknowledges", err, libvirt.ErrUnplugPending)
	if xmldef.FindDisk(e.domainXML(dom, golibvirt.DomainXMLInactive), cid, "") != nil {
		t.Error("disk still in the definition after the detach request")
	}
	if xmldef.FindDisk(e.domainXML(dom, 0), cid, "") == nil {
		t.Fatal("disk left the running domain: this guest was expected never to acknowledge")
	}
	if got, err := e.b.AttachedDisks(ctx, dom.Name); err != nil || !slices.Equal(got, []string{cid}) {
		t.Errorf("AttachedDisks while the unplug is pending = %v, %v; want [%s]", got, err, cid)
	}
	wantErr(t, "DeleteDisk while QEMU holds it", e.b.DeleteDisk(ctx, cid), cpierr.ErrInUse)
	_, err = e.attach(ctx, other.Name, cid)
	wantErr(t, "AttachDisk elsewhere while QEMU holds it", err, cpierr.ErrInUse)
	wantErr(t, "DetachDisk retried", e.b.DetachDisk(ctx, dom.Name, cid), libvirt.ErrUnplugPending)

	// Attaching it back to the same VM restores the definition.
	if again, err := e.attach(ctx, dom.Name, cid); err != nil || again != target {
		t.Fatalf("re-attach to the same VM = %s, %v; want %s", again, err, target)
	}
	e.assertAttachedAt(dom, cid, target, disk.FormatQcow2, true)
	_ = e.b.DetachDisk(ctx, dom.Name, cid)

	// A power cycle (what reboot_vm does to a guest that ignores ACPI)
	// completes the detach.
	if err := e.conn.DomainDestroy(dom); err != nil {
		t.Fatal(err)
	}
	if err := e.conn.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	e.assertDetached(dom, cid)
	wantErr(t, "DetachDisk after restart", e.b.DetachDisk(ctx, dom.Name, cid), cpierr.ErrNotAttached)
	if err := e.b.DeleteDisk(ctx, cid); err != nil {
		t.Fatal(err)
	}
	e.assertNoDiskVolumes()
}

// TestHotplugSlotsOfACreatedVM fills every spare root port of a VM made by
// CreateVM (the production domain layout) with hot-plugged disks; one
// more fails with a hint at hotplug_slots and leaves the VM unchanged.
func TestHotplugSlotsOfACreatedVM(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	spec := e.vmSpec(e.importStemcell(64 << 20))
	if err := e.createVM(e.b, &spec); err != nil {
		t.Fatal(err)
	}
	dom, err := e.ownedDomain(spec.CID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.cfg.HotplugSlots {
		cid := e.newDisk(4, disk.FormatQcow2)
		target, err := e.attach(ctx, spec.CID, cid)
		if err != nil {
			t.Fatalf("hot-plugging disk %d of %d: %v", i+1, e.cfg.HotplugSlots, err)
		}
		e.assertAttachedAt(dom, cid, target, disk.FormatQcow2, true)
	}
	extra := e.newDisk(4, disk.FormatQcow2)
	_, err = e.attach(ctx, spec.CID, extra)
	if err == nil || !strings.Contains(err.Error(), "hotplug_slots") {
		t.Errorf("attaching one disk more than hotplug_slots: got %v, want an error naming hotplug_slots", err)
	}
	e.assertDetached(dom, extra)
	got, err := e.b.AttachedDisks(ctx, spec.CID)
	if err != nil || len(got) != e.cfg.HotplugSlots {
		t.Errorf("AttachedDisks lists %d disks, %v; want %d", len(got), err, e.cfg.HotplugSlots)
	}
}

// snapshotMetadata returns a snapshot's metadata and the disk it was
// taken from. ErrNotFound when the snapshot is not there.
func (e *testEnv) snapshotMetadata(ctx context.Context, snapCID string) (storage.MetaDocument, error) {
	b := e.b
	if _, err := b.LookupVolume(ctx, snapCID); err != nil {
		return storage.MetaDocument{}, fmt.Errorf("reading snapshot '%s': %w", snapCID, err)
	}
	doc, err := b.ReadMeta(ctx, snapCID)
	if err != nil {
		return storage.MetaDocument{}, fmt.Errorf("reading metadata of snapshot '%s': %w", snapCID, err)
	}
	return doc, nil
}
