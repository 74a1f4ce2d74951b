package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

func createDisk(t *testing.T, sizeMiB int, props map[string]any) string {
	t.Helper()
	if props == nil {
		props = map[string]any{}
	}
	cid := resultString(t, mustCall(t, "create_disk", sizeMiB, props, nil))
	t.Cleanup(func() { call(t, "delete_disk", cid) })
	return cid
}

func attach(t *testing.T, vmCID, diskCID string) guestcheck.Hint {
	t.Helper()
	var h guestcheck.Hint
	raw := mustCall(t, "attach_disk", vmCID, diskCID)
	if err := json.Unmarshal(raw, &h); err != nil || disk.ByIDPrefix+h.ID != diskCID || !strings.HasPrefix(h.Path, "/dev/vd") {
		t.Fatalf("attach_disk hint %s for disk %s: want the serial whose by-id link is the CID as id, and a /dev/vdX path", raw, diskCID)
	}
	return h
}

func getDisks(t *testing.T, vmCID string) []string {
	t.Helper()
	var disks []string
	json.Unmarshal(mustCall(t, "get_disks", vmCID), &disks)
	return disks
}

// domainHasSerial tells whether the live (or persistent) XML has a disk
// with the hint's serial.
func domainHasSerial(t *testing.T, vmCID, serial string, inactive bool) bool {
	t.Helper()
	args := []string{"dumpxml", vmCID}
	if inactive {
		args = append(args, "--inactive")
	}
	return strings.Contains(mustVirsh(t, args...), "<serial>"+serial+"</serial>")
}

func TestDiskLifecycle(t *testing.T) {
	stemcell := importBootableStemcell(t)
	vm1 := createVM(t, stemcell, nil, 20)
	vm2 := createVM(t, stemcell, nil, 21)
	diskCID := createDisk(t, 64, nil)

	if got := string(mustCall(t, "has_disk", diskCID)); got != "true" {
		t.Fatalf("has_disk = %s", got)
	}
	mustCall(t, "set_disk_metadata", diskCID, map[string]any{"deployment": "zk", "instance_id": "1"})

	h := attach(t, vm1, diskCID)
	if !domainHasSerial(t, vm1, h.ID, false) || !domainHasSerial(t, vm1, h.ID, true) {
		t.Fatal("attached disk is not in both the live and the persistent definition")
	}
	if got := getDisks(t, vm1); len(got) != 1 || got[0] != diskCID {
		t.Fatalf("get_disks = %v", got)
	}
	if res := call(t, "attach_disk", vm2, diskCID); res.Response.Error == nil || !strings.Contains(res.Response.Error.Message, vm1) {
		t.Fatalf("attaching a disk attached elsewhere must be refused naming %s: %+v", vm1, res.Response.Error)
	}
	if res := call(t, "delete_disk", diskCID); res.Response.Error == nil {
		t.Fatal("delete_disk of an attached disk succeeded")
	}

	afterBoot := waitForBoot(t, vm1, 0)
	mustCall(t, "reboot_vm", vm1)
	if got := getDisks(t, vm1); len(got) != 1 || !domainHasSerial(t, vm1, h.ID, false) {
		t.Fatalf("disk lost across reboot: get_disks %v", got)
	}
	waitForBoot(t, vm1, afterBoot)

	mustCall(t, "detach_disk", vm1, diskCID)
	if domainHasSerial(t, vm1, h.ID, false) || domainHasSerial(t, vm1, h.ID, true) {
		t.Fatal("detached disk still in the domain")
	}
	wantError(t, call(t, "detach_disk", vm1, diskCID), "DiskNotAttached")
	if got := getDisks(t, vm1); len(got) != 0 {
		t.Fatalf("get_disks after detach = %v", got)
	}

	waitForBoot(t, vm2, 0)
	h2 := attach(t, vm2, diskCID)
	if h2.ID != h.ID {
		t.Fatalf("the disk's id changed between VMs: %s vs %s", h.ID, h2.ID)
	}
	mustCall(t, "detach_disk", vm2, diskCID)

	mustCall(t, "resize_disk", diskCID, 128)
	if info := mustVirsh(t, "vol-info", "--pool", suite.Pool, diskCID, "--bytes"); !strings.Contains(info, fmt.Sprint(128<<20)) {
		t.Fatalf("resize to 128 MiB not visible:\n%s", info)
	}
	if res := call(t, "resize_disk", diskCID, 64); res.Response.Error == nil || !strings.Contains(strings.ToLower(res.Response.Error.Message), "shrink") {
		t.Fatalf("shrinking must be a clear error: %+v", res.Response.Error)
	}

	snap := resultString(t, mustCall(t, "snapshot_disk", diskCID, map[string]any{"deployment": "zk"}))
	if !strings.HasPrefix(snap, "snap-") {
		t.Fatalf("snapshot CID %q", snap)
	}
	if _, err := virsh("vol-info", "--pool", suite.Pool, snap); err != nil {
		t.Fatalf("snapshot %s has no volume: a snapshot must be a real copy", snap)
	}
	mustCall(t, "delete_snapshot", snap)
	// A repeated delete (the director did not see the first one finish) is done.
	mustCall(t, "delete_snapshot", snap)

	mustCall(t, "delete_disk", diskCID)
	if got := string(mustCall(t, "has_disk", diskCID)); got != "false" {
		t.Fatalf("has_disk after delete = %s", got)
	}
	mustCall(t, "delete_vm", vm1)
	mustCall(t, "delete_vm", vm2)
	assertNothingLeft(t, "sc-")
}

func TestCreateVMWithDiskCIDs(t *testing.T) {
	stemcell := importBootableStemcell(t)
	diskCID := createDisk(t, 32, map[string]any{"format": "raw"})
	vmCID := createVM(t, stemcell, []string{diskCID}, 22)
	if got := getDisks(t, vmCID); len(got) != 1 || got[0] != diskCID {
		t.Fatalf("get_disks = %v", got)
	}
	waitForBoot(t, vmCID, 0)
	mustCall(t, "detach_disk", vmCID, diskCID)
	mustCall(t, "delete_vm", vmCID)
	mustCall(t, "delete_disk", diskCID)
	assertNothingLeft(t, "sc-")
}

// TestLegacyDiskCIDsStillServed: a disk an older CPI made under the CID
// scheme "disk-<uuid>" (here a volume of that name made by hand) is still
// served, attached with the hash serial it always had.
func TestLegacyDiskCIDsStillServed(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	legacy := disk.LegacyCID()
	mustVirsh(t, "vol-create-as", suite.Pool, legacy, "16M", "--format", "qcow2")
	t.Cleanup(func() { virsh("vol-delete", "--pool", suite.Pool, legacy) })
	// As the version that made disk-<uuid> CIDs left it once the director
	// had tagged it: with its version-1 metadata sidecar, the proof that the
	// CPI made it (a volume with neither is foreign and refused).
	sidecar := filepath.Join(t.TempDir(), "legacy.meta")
	doc := []byte(`{"version":1,"metadata":{"director":"old"}}`)
	if err := os.WriteFile(sidecar, append(doc, bytes.Repeat([]byte(" "), 4096-len(doc))...), 0o600); err != nil {
		t.Fatal(err)
	}
	mustVirsh(t, "vol-create-as", suite.Pool, legacy+".meta", "4096", "--format", "raw")
	t.Cleanup(func() { virsh("vol-delete", "--pool", suite.Pool, legacy+".meta") })
	mustVirsh(t, "vol-upload", "--pool", suite.Pool, legacy+".meta", sidecar)
	if got := string(mustCall(t, "has_disk", legacy)); got != "true" {
		t.Fatalf("has_disk(%s) = %s", legacy, got)
	}
	mustCall(t, "set_disk_metadata", legacy, map[string]any{"deployment": "old"})
	vmCID := createVM(t, stemcell, []string{legacy}, 24)
	if got := getDisks(t, vmCID); len(got) != 1 || got[0] != legacy {
		t.Fatalf("get_disks = %v", got)
	}
	if !domainHasSerial(t, vmCID, disk.Serial(legacy), true) {
		t.Fatalf("disk %s is not attached with its hash serial %s", legacy, disk.Serial(legacy))
	}
	mustCall(t, "delete_vm", vmCID)
	mustCall(t, "delete_disk", legacy)
	assertNothingLeft(t, "sc-")
}

func TestBadDiskInput(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	vmCID := createVM(t, stemcell, nil, 23)
	unknown := "disk-00000000-0000-0000-0000-000000000000"
	for _, cid := range []string{unknown, "virtio-aaaaaaaaaaaaa", "../../etc/passwd", vmCID + "-root"} {
		wantError(t, call(t, "delete_disk", cid), "DiskNotFound")
		wantError(t, call(t, "attach_disk", vmCID, cid), "DiskNotFound")
		wantError(t, call(t, "set_disk_metadata", cid, map[string]any{"a": "b"}), "DiskNotFound")
		wantError(t, call(t, "snapshot_disk", cid, map[string]any{}), "DiskNotFound")
		if got := string(mustCall(t, "has_disk", cid)); got != "false" {
			t.Errorf("has_disk(%q) = %s", cid, got)
		}
	}
	if _, err := virsh("vol-info", "--pool", suite.Pool, vmCID+"-root"); err != nil {
		t.Fatal("the VM's root volume was touched by a disk call")
	}
	wantError(t, call(t, "create_disk", 16, map[string]any{"format": "vmdk"}, nil), "CloudError")
	wantError(t, call(t, "create_disk", 100*1024*1024, map[string]any{"format": "raw"}, nil), "NoDiskSpace")
	mustCall(t, "delete_vm", vmCID)
	assertNothingLeft(t, "sc-")
}

// TestParallelAttachToOneVM runs 8 CPI processes at once, each attaching a
// different disk to the same running VM.
func TestParallelAttachToOneVM(t *testing.T) {
	stemcell := importBootableStemcell(t)
	vmCID := createVM(t, stemcell, nil, 30)
	waitForBoot(t, vmCID, 0)
	const n = 8
	disks := make([]string, n)
	for i := range disks {
		disks[i] = createDisk(t, 16, nil)
	}
	hints := make([]guestcheck.Hint, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range disks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := call(t, "attach_disk", vmCID, disks[i])
			if res.Response.Error != nil {
				errs[i] = res.Response.Error.Message
				return
			}
			json.Unmarshal(res.Response.Result, &hints[i])
		}(i)
	}
	wg.Wait()
	ids, paths := map[string]bool{}, map[string]bool{}
	for i, h := range hints {
		if errs[i] != "" {
			t.Fatalf("attach %d failed: %s", i, errs[i])
		}
		if ids[h.ID] || paths[h.Path] {
			t.Fatalf("hints collide: %+v", hints)
		}
		ids[h.ID], paths[h.Path] = true, true
	}
	if got := getDisks(t, vmCID); len(got) != n {
		t.Fatalf("get_disks lists %d disks; want %d", len(got), n)
	}
	for _, d := range disks {
		mustCall(t, "detach_disk", vmCID, d)
	}
}

func TestParallelCreateVM(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	const n = 8
	cids := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := call(t, "create_vm", fmt.Sprintf("agent-%d", i), stemcell, map[string]any{"memory": 128, "ephemeral_disk": 512},
				suite.Networks(40+i), []string{}, map[string]any{})
			if res.Response.Error != nil {
				errs[i] = res.Response.Error.Type + ": " + res.Response.Error.Message
				return
			}
			var result []json.RawMessage
			json.Unmarshal(res.Response.Result, &result)
			json.Unmarshal(result[0], &cids[i])
		}(i)
	}
	wg.Wait()
	for i := range cids {
		if errs[i] != "" {
			t.Errorf("create_vm %d: %s", i, errs[i])
		}
	}
	for _, cid := range cids {
		if cid != "" {
			mustCall(t, "delete_vm", cid)
		}
	}
	assertNothingLeft(t, "sc-")
}

func TestParallelCreateDeleteDisks(t *testing.T) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for round := 0; round < 3; round++ {
				res := call(t, "create_disk", 8, map[string]any{}, nil)
				if res.Response.Error != nil {
					errs[i] = res.Response.Error.Message
					return
				}
				var cid string
				json.Unmarshal(res.Response.Result, &cid)
				call(t, "set_disk_metadata", cid, map[string]any{"round": round})
				if res := call(t, "delete_disk", cid); res.Response.Error != nil {
					errs[i] = res.Response.Error.Message
					return
				}
			}
		}(i)
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("worker %d: %s", i, e)
		}
	}
	assertNothingLeft(t, "sc-")
}

// TestDetachWhileGuestBoots detaches right after reboot_vm, while the guest
// is still in its firmware: the first unplug request is lost there, and the
// detach must still complete once the guest runs.
func TestDetachWhileGuestBoots(t *testing.T) {
	stemcell := importBootableStemcell(t)
	vmCID := createVM(t, stemcell, nil, 24)
	diskCID := createDisk(t, 16, nil)
	attach(t, vmCID, diskCID)
	afterBoot := waitForBoot(t, vmCID, 0)
	mustCall(t, "reboot_vm", vmCID)
	mustCall(t, "detach_disk", vmCID, diskCID)
	if got := getDisks(t, vmCID); len(got) != 0 {
		t.Fatalf("get_disks after detach = %v", got)
	}
	waitForBoot(t, vmCID, afterBoot)
	mustCall(t, "delete_vm", vmCID)
}

// TestSnapshotWhileAnotherDiskOfTheVMMoves: snapshot_disk of a disk on a
// running VM takes the VM's lock too, so attaching and detaching another
// disk of that VM at the same time (separate processes) cannot make it fail.
func TestSnapshotWhileAnotherDiskOfTheVMMoves(t *testing.T) {
	stemcell := importBootableStemcell(t)
	vmCID := createVM(t, stemcell, nil, 25)
	held, moving := createDisk(t, 16, nil), createDisk(t, 16, nil)
	attach(t, vmCID, held)
	waitForBoot(t, vmCID, 0)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 4 {
			for _, method := range []string{"attach_disk", "detach_disk"} {
				if r := call(t, method, vmCID, moving); r.Response.Error != nil {
					t.Errorf("%s: %s", method, r.Response.Error.Message)
				}
			}
		}
	}()
	var snaps []string
	go func() {
		defer wg.Done()
		for range 12 {
			r := call(t, "snapshot_disk", held, map[string]any{})
			if r.Response.Error != nil {
				t.Errorf("snapshot_disk during attach/detach of another disk: %s", r.Response.Error.Message)
				continue
			}
			var snap string
			json.Unmarshal(r.Response.Result, &snap)
			snaps = append(snaps, snap)
		}
	}()
	wg.Wait()
	for _, s := range snaps {
		mustCall(t, "delete_snapshot", s)
	}
	mustCall(t, "delete_vm", vmCID)
}
