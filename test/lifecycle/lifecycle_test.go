// Package lifecycle boots real guests from the test stemcell through the CPI
// binary, as a director would, and checks from inside each guest what the
// BOSH agent would find: its settings on the config drive, a NIC for every
// MAC with the static IP, and each persistent disk through the agent's own
// resolver rules, with data carried from one VM to the next.
package lifecycle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// bootTimeout bounds one boot to its reports under QEMU TCG on 2 cores,
// with other guests running.
const bootTimeout = 3 * time.Minute

var (
	uri           string
	stemcellImage string
	stemcellProps map[string]any
)

func TestMain(m *testing.M) {
	var run bool
	var err error
	uri, run, err = devenv.SuiteURI("lifecycle suite")
	if !run {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "lifecycle-stemcell-")
	if err == nil {
		stemcellImage, stemcellProps, err = devenv.UnpackTestStemcell(filepath.Join("..", ".."), dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// world is one environment with the test stemcell imported.
type world struct {
	t        *testing.T
	env      *devenv.Env
	stemcell string
}

func newWorld(t *testing.T, name string, buildTags ...string) *world {
	t.Helper()
	w := newEmptyWorld(t, name, buildTags...)
	stemcell := w.callString("create_stemcell", stemcellImage, stemcellProps)
	w.stemcell = stemcell // a test may point w.stemcell at another one
	t.Cleanup(func() { w.env.Client.Call("delete_stemcell", stemcell) })
	return w
}

// newEmptyWorld is an environment with no stemcell imported yet.
func newEmptyWorld(t *testing.T, name string, buildTags ...string) *world {
	t.Helper()
	env, err := devenv.New("../..", uri, name, buildTags...)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, env: env}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	return w
}

func (w *world) call(method string, args ...any) json.RawMessage {
	w.t.Helper()
	raw, run, err := w.env.Client.Call(method, args...)
	if err != nil {
		w.t.Fatalf("%v\nCPI log:\n%s", err, run.Stderr)
	}
	return raw
}

func (w *world) callString(method string, args ...any) string {
	w.t.Helper()
	s, run, err := w.env.Client.CallString(method, args...)
	if err != nil {
		w.t.Fatalf("%v\nCPI log:\n%s", err, run.Stderr)
	}
	return s
}

func (w *world) manualIP(host int) string { return fmt.Sprintf("%s.%d", w.env.Subnet, host) }

// createVM boots a VM with one manual, one dynamic and one vip network.
// The vip network (as bosh-deployment's external-ip ops file adds) must get
// no NIC: checkBoot wants a NIC report for every MAC of the domain, and the
// agent configures none for vip.
func (w *world) createVM(agentID string, host int, diskCIDs []string) string {
	w.t.Helper()
	return w.createVMWith(w.env.Client, agentID, host, diskCIDs)
}

// createVMWith is createVM through client (e.g. one that sends another
// stemcell API version).
func (w *world) createVMWith(client cpiclient.Client, agentID string, host int, diskCIDs []string) string {
	w.t.Helper()
	networks := w.env.Networks(host)
	networks["public"] = map[string]any{"type": "vip", "ip": fmt.Sprintf("203.0.113.%d", host), "cloud_properties": map[string]any{}}
	cid, run, err := client.CreateVM(agentID, w.stemcell, map[string]any{"cpus": 1, "memory": 384, "ephemeral_disk": 512},
		networks, map[string]any{}, diskCIDs)
	if err != nil {
		w.t.Fatalf("%v\nCPI log:\n%s", err, run.Stderr)
	}
	w.t.Cleanup(func() { w.env.Client.Call("delete_vm", cid) })
	return cid
}

func (w *world) attach(vmCID, diskCID string) guestcheck.Hint {
	w.t.Helper()
	var h guestcheck.Hint
	if err := json.Unmarshal(w.call("attach_disk", vmCID, diskCID), &h); err != nil {
		w.t.Fatalf("attach_disk hint: %v", err)
	}
	return h
}

func TestGuestLifecycle(t *testing.T) {
	w := newWorld(t, "life")
	env := w.env

	vm1 := w.createVM("agent-one", 10, nil)
	next, err := checkBoot(env, vm1, "agent-one", w.manualIP(10), 0, bootTimeout)
	if err != nil {
		t.Fatal(err)
	}

	diskCID := w.callString("create_disk", 64, map[string]any{}, vm1)
	t.Cleanup(func() {
		// The later VMs' cleanups run first (LIFO); vm1's runs after this
		// one, so a failed test may leave the disk attached to vm1 here.
		env.Client.Call("detach_disk", vm1, diskCID)
		env.Client.Call("delete_disk", diskCID)
	})
	w.attach(vm1, diskCID)
	first, err := checkDiskResolves(env, vm1, diskCID, next, bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if m := markerOf(first); m != "" {
		t.Fatalf("a new empty disk reported a marker %q", m)
	}

	// Reboot with the disk attached: it must come back, holding the marker
	// the guest wrote before.
	before := len(env.GuestReports(vm1))
	w.call("reboot_vm", vm1)
	booted := rebootStart(env, vm1, before)
	if _, err := checkBoot(env, vm1, "agent-one", w.manualIP(10), booted, bootTimeout); err != nil {
		t.Fatalf("after reboot_vm: %v", err)
	}
	// From the new boot's first report: the disk is there from the start,
	// so its report may come before a NIC's (a renewed DHCP lease is quick).
	again, err := checkDiskResolves(env, vm1, diskCID, booted, bootTimeout)
	if err != nil {
		t.Fatalf("after reboot_vm: %v", err)
	}
	if markerOf(again) == "" {
		t.Fatalf("after reboot_vm the disk holds no marker: data lost\n%s", raw(again))
	}

	w.call("detach_disk", vm1, diskCID)

	// A second VM gets the disk and must see the first VM's data.
	vm2 := w.createVM("agent-two", 11, nil)
	next2, err := checkBoot(env, vm2, "agent-two", w.manualIP(11), 0, bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	w.attach(vm2, diskCID)
	carried, err := checkDiskResolves(env, vm2, diskCID, next2, bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if markerOf(carried) != markerOf(again) {
		t.Fatalf("the second VM sees marker %q; the first VM wrote %q", markerOf(carried), markerOf(again))
	}

	// delete_vm never deletes a persistent disk, even an attached one.
	w.call("delete_vm", vm2)
	if got := string(w.call("has_disk", diskCID)); got != "true" {
		t.Fatal("delete_vm of a VM with the disk attached deleted the disk")
	}
	w.call("delete_vm", vm1)

	// create_vm with disk_cids, stemcell API 2: the boot-time settings name
	// no persistent disk (the director announces its disks to the agent),
	// and the agent's rules find the disk by its CID.
	vm3 := w.createVM("agent-three", 12, []string{diskCID})
	if _, err = checkBoot(env, vm3, "agent-three", w.manualIP(12), 0, bootTimeout); err != nil {
		t.Fatal(err)
	}
	if err := checkBootTimeDisk(env, vm3, diskCID, false); err != nil {
		t.Fatal(err)
	}
	w.call("detach_disk", vm3, diskCID)
	w.call("delete_vm", vm3)

	// Stemcell API 1: the disk is in the settings at boot, and the guest
	// resolves it from there by its CID, not by path.
	v1 := env.Client
	v1.StemcellAPIVersion = 1
	vm4 := w.createVMWith(v1, "agent-four", 13, []string{diskCID})
	if _, err = checkBoot(env, vm4, "agent-four", w.manualIP(13), 0, bootTimeout); err != nil {
		t.Fatal(err)
	}
	if err := checkBootTimeDisk(env, vm4, diskCID, true); err != nil {
		t.Fatal(err)
	}
	if _, run, err := v1.Call("detach_disk", vm4, diskCID); err != nil {
		t.Fatalf("%v\nCPI log:\n%s", err, run.Stderr)
	}
	w.call("delete_vm", vm4)
	w.call("delete_disk", diskCID)
	w.call("delete_stemcell", w.stemcell)
	if left := env.LeftOver(); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// rebootStart is where the reports of the boot after a reboot begin: the
// console log may be appended to or started afresh.
func rebootStart(env *devenv.Env, vmCID string, before int) int {
	deadline := time.Now().Add(bootTimeout)
	for time.Now().Before(deadline) {
		reports := env.GuestReports(vmCID)
		if len(reports) < before {
			return 0
		}
		for i := before; i < len(reports); i++ {
			if reports[i].Event == guestcheck.EventSettings {
				return i
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return before
}

// checkBootTimeDisk: a disk named in create_vm's disk_cids is in the
// settings the guest read at boot exactly when inSettings (stemcell API 1),
// the guest then resolves it from there by its CID in /dev/disk/by-id, and
// the agent's rules find it by its CID in any case.
func checkBootTimeDisk(env *devenv.Env, vmCID, diskCID string, inSettings bool) error {
	settings, _, err := env.WaitForReport(vmCID, 0, bootTimeout, "settings report", func(r report) bool { return r.Event == guestcheck.EventSettings })
	if err != nil {
		return err
	}
	if !inSettings {
		if len(settings.Disks) > 0 {
			return fmt.Errorf("VM %s: stemcell API 2 settings must leave disks.persistent empty; the guest read %v", vmCID, settings.Disks)
		}
		_, err = checkDiskResolves(env, vmCID, diskCID, 0, bootTimeout)
		return err
	}
	if !slices.Contains(settings.Disks, diskCID) {
		return fmt.Errorf("VM %s: disk %s is not in the settings the guest read at boot: %s", vmCID, diskCID, raw(settings))
	}
	resolved, _, err := env.WaitForReport(vmCID, 0, bootTimeout, "persistent disk resolved from the settings", func(r report) bool {
		return (r.Event == guestcheck.EventPersistent || r.Event == guestcheck.EventError) && r.DiskCID == diskCID
	})
	if err != nil {
		return err
	}
	if resolved.Event == guestcheck.EventError {
		return fmt.Errorf("VM %s: the guest could not resolve disk %s from its settings: %s", vmCID, diskCID, raw(resolved))
	}
	if resolved.Via != "id" {
		return fmt.Errorf("VM %s: the guest found disk %s by %s, not by its CID in /dev/disk/by-id: %s", vmCID, diskCID, resolved.Via, raw(resolved))
	}
	_, err = checkDiskResolves(env, vmCID, diskCID, 0, bootTimeout)
	return err
}

// TestSuiteCatchesFaults runs the suite's checks against a CPI built to
// break one thing, and requires each break to be caught.
func TestSuiteCatchesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("boots guests")
	}
	w := newWorld(t, "fault", "faultinject")
	openstack, vsphere := w.stemcell, importVSphereStemcell(w)
	cases := []struct {
		fault    string
		stemcell string
		check    func(vmCID string) error
	}{
		{"omit-config-drive", openstack, func(vm string) error {
			_, err := checkBoot(w.env, vm, "agent-f", w.manualIP(20), 0, 90*time.Second)
			return err
		}},
		{"wrong-settings-mac", openstack, func(vm string) error {
			_, err := checkBoot(w.env, vm, "agent-f", w.manualIP(20), 0, 90*time.Second)
			return err
		}},
		{"wrong-disk-cid", openstack, func(vm string) error {
			if _, err := checkBoot(w.env, vm, "agent-f", w.manualIP(20), 0, bootTimeout); err != nil {
				return fmt.Errorf("unexpected boot failure: %w", err)
			}
			diskCID := w.callString("create_disk", 16, map[string]any{}, vm)
			defer w.env.Client.Call("delete_disk", diskCID)
			defer w.env.Client.Call("detach_disk", vm, diskCID)
			w.attach(vm, diskCID)
			_, err := checkDiskResolves(w.env, vm, diskCID, 0, 60*time.Second)
			return err
		}},
		// A vSphere stemcell's VM whose disk is plugged at a SCSI target
		// other than its hint's volume_id.
		{"wrong-disk-hint", vsphere, func(vm string) error {
			if _, err := checkBoot(w.env, vm, "agent-f", w.manualIP(20), 0, bootTimeout); err != nil {
				return fmt.Errorf("unexpected boot failure: %w", err)
			}
			diskCID := w.callString("create_disk", 16, map[string]any{}, vm)
			defer w.env.Client.Call("delete_disk", diskCID)
			defer w.env.Client.Call("detach_disk", vm, diskCID)
			_, err := attachAndResolveSCSI(w, vm, diskCID, 60*time.Second)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			t.Setenv("BOSH_LIBVIRT_CPI_FAULTS", tc.fault)
			w.stemcell = tc.stemcell
			vm := w.createVM("agent-f", 20, nil)
			err := tc.check(vm)
			w.env.Client.Call("delete_vm", vm)
			if err == nil {
				t.Fatalf("the suite did not notice fault %s", tc.fault)
			}
			if strings.HasPrefix(err.Error(), "unexpected") {
				t.Fatal(err)
			}
			t.Logf("fault %s caught: %s", tc.fault, firstLine(err.Error()))
		})
	}
}

func firstLine(s string) string {
	if i := strings.Index(s, "\n"); i >= 0 {
		return s[:i]
	}
	return s
}
