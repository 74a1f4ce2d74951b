package docker

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// A persistent disk, through its hint in the guest: attached without
// recreating or restarting the container, size enforced, data surviving
// detach, attach to another VM and that VM's deletion; resize grows it;
// snapshots hold the disk's content.
func TestDiskLifecycle(t *testing.T) {
	e := newTestEnv(t)
	vm1, vm2 := e.vmSpec(), e.vmSpec()
	e.createVM(e.r, vm1)
	e.createVM(e.r, vm2)
	d := disk.NewCID()
	if err := e.r.createDisk(e.ctx, d, 16); err != nil {
		t.Fatal(err)
	}
	before, err := e.r.inspectVM(e.ctx, vm1.CID)
	if err != nil {
		t.Fatal(err)
	}

	hint, err := e.r.AttachDisk(e.ctx, vm1.CID, d)
	if err != nil {
		t.Fatal(err)
	}
	if hint.Path != DiskHintDir+"/"+d {
		t.Errorf("hint %+v", hint)
	}
	after, _ := e.r.inspectVM(e.ctx, vm1.CID)
	if after.ID != before.ID || after.State.StartedAt != before.State.StartedAt {
		t.Errorf("attach_disk recreated or restarted the container: %s@%s -> %s@%s", before.ID, before.State.StartedAt, after.ID, after.State.StartedAt)
	}
	e.mustExec(vm1.CID, "sh", "-c", "echo persistent-data > "+hint.Path+"/file && sync")

	// Size: 16 MiB holds no 32 MiB file.
	out, code := e.exec(vm1.CID, "sh", "-c", "dd if=/dev/zero of="+hint.Path+"/big bs=1M count=32 2>&1; sync")
	if code == 0 && !strings.Contains(out, "No space left") {
		t.Errorf("a 32 MiB write onto a 16 MiB disk succeeded: %s", out)
	}
	e.mustExec(vm1.CID, "rm", hint.Path+"/big")

	if disks, err := e.r.AttachedDisks(e.ctx, vm1.CID); err != nil || fmt.Sprint(disks) != fmt.Sprint([]string{d}) {
		t.Errorf("get_disks %v %v", disks, err)
	}
	for name, err := range map[string]error{
		"delete_disk while attached": e.r.DeleteDisk(e.ctx, d),
		"attach to a second VM":      errOnly(e.r.AttachDisk(e.ctx, vm2.CID, d)),
		"resize while attached":      e.r.ResizeDisk(e.ctx, d, 32),
	} {
		if !errors.Is(err, cpierr.ErrInUse) || !strings.Contains(err.Error(), d) {
			t.Errorf("%s: want ErrInUse naming the disk, got %v", name, err)
		}
	}
	if again, err := e.r.AttachDisk(e.ctx, vm1.CID, d); err != nil || again != hint {
		t.Errorf("attaching again to the same VM: %+v %v", again, err)
	}

	// Snapshot of the attached disk: frozen copy, the same file inside.
	snap := disk.NewSnapshotCID()
	if err := e.r.SnapshotDisk(e.ctx, d, snap, disk.Metadata{"director": "d"}); err != nil {
		t.Fatal(err)
	}
	if got := readFromImage(t, e.r.SnapshotPath(snap), "file"); got != "persistent-data\n" {
		t.Errorf("snapshot holds %q", got)
	}

	if err := e.r.DetachDisk(e.ctx, vm1.CID, d); err != nil {
		t.Fatal(err)
	}
	if out, _ := e.exec(vm1.CID, "cat", hint.Path+"/file"); out != "" {
		t.Errorf("after detach the old VM still reads %q", out)
	}
	if err := e.r.DetachDisk(e.ctx, vm1.CID, d); !errors.Is(err, cpierr.ErrNotAttached) {
		t.Errorf("detaching twice: want ErrNotAttached, got %v", err)
	}

	if _, err := e.r.AttachDisk(e.ctx, vm2.CID, d); err != nil {
		t.Fatal(err)
	}
	if got := e.mustExec(vm2.CID, "cat", hint.Path+"/file"); got != "persistent-data\n" {
		t.Errorf("second VM reads %q", got)
	}
	if holders, _ := e.r.DiskHolders(e.ctx, d); fmt.Sprint(holders) != fmt.Sprint([]string{vm2.CID}) {
		t.Errorf("holders %v", holders)
	}
	// delete_vm with the disk still attached: the disk survives, detached.
	if err := e.r.DeleteVM(e.ctx, vm2.CID); err != nil {
		t.Fatal(err)
	}
	if holders, _ := e.r.DiskHolders(e.ctx, d); len(holders) != 0 {
		t.Errorf("holders after delete_vm %v", holders)
	}

	// A detached snapshot is a byte-for-byte copy.
	snap2 := disk.NewSnapshotCID()
	if err := e.r.SnapshotDisk(e.ctx, d, snap2, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := fileSum(t, e.r.diskImage(d)), fileSum(t, e.r.SnapshotPath(snap2)); a != b {
		t.Errorf("snapshot of a detached disk differs from it")
	}
	for _, s := range []string{snap, snap2} {
		if err := e.r.DeleteSnapshot(e.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.r.DeleteSnapshot(e.ctx, snap); !errors.Is(err, cpierr.ErrNotFound) {
		t.Errorf("deleting a deleted snapshot: %v", err)
	}

	// Resize: shrinking is refused, growing makes room for 20 MiB.
	if err := e.r.ResizeDisk(e.ctx, d, 8); err == nil {
		t.Error("shrinking succeeded")
	}
	if err := e.r.ResizeDisk(e.ctx, d, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.AttachDisk(e.ctx, vm1.CID, d); err != nil {
		t.Fatal(err)
	}
	e.mustExec(vm1.CID, "sh", "-c", "dd if=/dev/zero of="+hint.Path+"/big bs=1M count=20 && sync")
	if got := e.mustExec(vm1.CID, "cat", hint.Path+"/file"); got != "persistent-data\n" {
		t.Errorf("after resize the disk holds %q", got)
	}

	meta := disk.Metadata{"deployment": "d", "instance_group": "g"}
	if err := e.r.SetDiskMetadata(e.ctx, d, meta); err != nil {
		t.Fatal(err)
	}
	if got, err := e.r.GetDiskMetadata(e.ctx, d); err != nil || fmt.Sprint(got) != fmt.Sprint(meta) {
		t.Errorf("disk metadata %v %v", got, err)
	}
	if err := e.r.DeleteVM(e.ctx, vm1.CID); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteDisk(e.ctx, d); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"delete_disk": e.r.DeleteDisk(e.ctx, d),
		"resize_disk": e.r.ResizeDisk(e.ctx, d, 64),
		"snapshot":    e.r.SnapshotDisk(e.ctx, d, disk.NewSnapshotCID(), nil),
	} {
		if !errors.Is(err, cpierr.ErrNotFound) || !strings.Contains(err.Error(), d) {
			t.Errorf("%s of a deleted disk: want ErrNotFound naming it, got %v", name, err)
		}
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if files, _ := filepath.Glob(filepath.Join(e.cfg.StoreDir, "*", "*")); len(files) > 0 {
		t.Errorf("files left in the store: %v", files)
	}
}

// A mount of the disk that survives inside the container (the agent's
// bind mount to /var/vcap/store) makes detach refuse: attaching the disk
// elsewhere would mount one filesystem twice.
func TestDetachRefusedWhileGuestHoldsDisk(t *testing.T) {
	e := newTestEnv(t)
	spec := e.vmSpec()
	spec.CapAdd = []string{"SYS_ADMIN"} // the guest mounts, as the agent does
	e.createVM(e.r, spec)
	d := disk.NewCID()
	if err := e.r.createDisk(e.ctx, d, 8); err != nil {
		t.Fatal(err)
	}
	hint, err := e.r.AttachDisk(e.ctx, spec.CID, d)
	if err != nil {
		t.Fatal(err)
	}
	e.mustExec(spec.CID, "sh", "-c", "mkdir -p /var/vcap/store && mount --bind "+hint.Path+" /var/vcap/store")
	if err := e.r.DetachDisk(e.ctx, spec.CID, d); !errors.Is(err, cpierr.ErrInUse) {
		t.Fatalf("detach while the guest holds a mount: want ErrInUse, got %v", err)
	}
	if got := e.mustExec(spec.CID, "cat", "/proc/mounts"); !strings.Contains(got, hint.Path) {
		t.Errorf("a refused detach unmounted the hint anyway:\n%s", got)
	}
	e.mustExec(spec.CID, "umount", "/var/vcap/store")
	if err := e.r.DetachDisk(e.ctx, spec.CID, d); err != nil {
		t.Fatalf("detach after the guest let go: %v", err)
	}
	if err := e.r.DeleteVM(e.ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteDisk(e.ctx, d); err != nil {
		t.Fatal(err)
	}
}

// On a remote daemon what needs a disk's bytes says plainly that it
// cannot work, before any call to the daemon.
func TestDisksRemoteNotSupported(t *testing.T) {
	r := &Runtime{cfg: Config{Host: "tcp://docker.example:2376"}.withDefaults()}
	d := disk.NewCID()
	for name, err := range map[string]error{
		"resize_disk":   r.ResizeDisk(t.Context(), d, 64),
		"snapshot_disk": r.SnapshotDisk(t.Context(), d, disk.NewSnapshotCID(), nil),
	} {
		if !errors.Is(err, cpierr.ErrNotSupported) || !strings.Contains(err.Error(), "Docker runtime") {
			t.Errorf("%s on a remote daemon: want ErrNotSupported naming the Docker runtime, got %v", name, err)
		}
	}
}

func errOnly[T any](_ T, err error) error { return err }

func fileSum(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// readFromImage mounts an ext4 image read-only on the host and reads a file.
func readFromImage(t *testing.T, img, file string) string {
	dir := t.TempDir()
	if err := run("mount", "-t", "ext4", "-o", "loop,ro,noload", img, dir); err != nil {
		t.Fatal(err)
	}
	defer unmount(dir)
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Disks named at create_vm (the bosh CLI names a recreated VM's disk) are
// mounted at their hints before init runs, the settings carry the hints
// when asked (stemcell API 1), and the attach_disk that follows finds the
// disk attached. A create_vm whose disk is attached elsewhere fails
// leaving nothing, and the disk stays with its holder.
func TestDiskAtCreation(t *testing.T) {
	e := newTestEnv(t)
	d := disk.NewCID()
	if err := e.r.createDisk(e.ctx, d, 16); err != nil {
		t.Fatal(err)
	}
	spec := e.vmSpec()
	spec.Disks, spec.DisksInSettings = []string{d}, true
	settings := e.createVM(e.r, spec)
	hint := disk.Hint{ID: d, Path: DiskHintDir + "/" + d}
	if got := settings.Disks.Persistent[d]; got != hint {
		t.Errorf("settings hint for %s: %+v, want %+v", d, got, hint)
	}
	if !mountLine(e.mustExec(spec.CID, "cat", "/proc/mounts"), hint.Path, "ext4", "") {
		t.Errorf("disk %s is not mounted at %s in the container", d, hint.Path)
	}
	if again, err := e.r.AttachDisk(e.ctx, spec.CID, d); err != nil || again != hint {
		t.Errorf("attach_disk after create_vm: %+v %v", again, err)
	}

	other := e.vmSpec()
	other.Disks = []string{d}
	if _, err := e.r.createContainerVM(e.ctx, other, settingsFor(other.CID, other.NICs...)); !errors.Is(err, cpierr.ErrInUse) {
		t.Fatalf("create_vm with a disk attached elsewhere: want ErrInUse, got %v", err)
	}
	if ok, _ := e.r.HasVM(e.ctx, other.CID); ok {
		t.Error("the failed create_vm left its container")
	}
	if _, err := os.Stat(e.r.vmDir(other.CID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed create_vm left its directory: %v", err)
	}
	if holders, err := e.r.DiskHolders(e.ctx, d); err != nil || fmt.Sprint(holders) != fmt.Sprint([]string{spec.CID}) {
		t.Errorf("disk holders after the failed create_vm: %v %v", holders, err)
	}
	if err := e.r.DeleteVM(e.ctx, spec.CID); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteDisk(e.ctx, d); err != nil {
		t.Fatal(err)
	}
}
