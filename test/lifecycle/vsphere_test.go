package lifecycle

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/configdrive"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// vSphereStemcell is the vSphere-format twin of the test stemcell (OVF,
// streamOptimized VMDK, UEFI only), made by `make vsphere-test-stemcell`.
const vSphereStemcell = "../../build/vsphere-test-stemcell.tgz"

// TestVSphereStemcellBootsUEFIThroughTheCPI: the vSphere test stemcell
// through the CPI binary: create_stemcell converts its VMDK to qcow2 on
// the libvirt host, create_vm boots it with UEFI and the settings as the
// env file on the SATA CD-ROM, and the guest reports those settings from
// there (via cdrom-env); its disks sit on a virtio-scsi controller, and the
// guest finds the ephemeral disk and a hot-plugged one by the vSphere
// agent's SCSI rule (volume_id = target), the latter again with its data
// after detach and attach, and, on a stemcell-API-1 VM, from the rewritten
// env after reboot_vm; everything deleted leaves nothing. FIGURE lines set create_stemcell
// beside the OpenStack twin's and create_vm to the first guest report with
// UEFI beside BIOS (printed, never asserted).
func TestVSphereStemcellBootsUEFIThroughTheCPI(t *testing.T) {
	w := newEmptyWorld(t, "ovf")
	env := w.env

	started := time.Now()
	vsphere := importVSphereStemcell(w)
	vsphereImport := time.Since(started)
	started = time.Now()
	openstack := w.callString("create_stemcell", stemcellImage, stemcellProps)
	openstackImport := time.Since(started)
	t.Cleanup(func() { env.Client.Call("delete_stemcell", openstack) })
	t.Logf("FIGURE create_stemcell vsphere-ovf (VMDK upload + qcow2 conversion on the libvirt host): %.2f s; openstack-qcow2 twin: %.2f s",
		vsphereImport.Seconds(), openstackImport.Seconds())
	vols, err := env.Volumes()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{vsphere: true, vsphere + ".meta": true, openstack: true, openstack + ".meta": true}
	for _, v := range vols {
		if !want[v] {
			t.Fatalf("after create_stemcell the pool holds %s (all: %v); want only the stemcells and their records", v, vols)
		}
	}

	// firmware: bios cannot boot a UEFI-only stemcell: refused, nothing made.
	if cid, run, err := env.Client.CreateVM("agent-bios-on-efi", vsphere, map[string]any{"memory": 384, "ephemeral_disk": 512, "firmware": "bios"},
		env.Networks(22), map[string]any{}, nil); err == nil || !strings.Contains(err.Error(), "'bios'") {
		t.Fatalf("create_vm with firmware bios of the UEFI-only stemcell = %s, %v; want it refused naming the firmware\n%s", cid, err, run.Stderr)
	}

	w.stemcell = vsphere
	uefiVM, uefiBoot := w.timedBoot("agent-uefi", 20)
	if err := checkDomainBoots(env, uefiVM, "efi"); err != nil {
		t.Fatal(err)
	}
	settings, next, err := env.WaitForReport(uefiVM, 0, bootTimeout, "settings report", func(r report) bool {
		return r.Event == guestcheck.EventSettings
	})
	if err != nil {
		t.Fatal(err)
	}
	if settings.Via != "cdrom-env" {
		t.Fatalf("VM %s read its settings via %q; a vSphere stemcell reads the env file on the CD-ROM (cdrom-env):\n%s", uefiVM, settings.Via, raw(settings))
	}
	if _, err := checkBoot(env, uefiVM, "agent-uefi", w.manualIP(20), 0, bootTimeout); err != nil {
		t.Fatal(err)
	}
	if err := checkEphemeralSCSI(env, uefiVM, next); err != nil {
		t.Fatal(err)
	}
	diskCID := w.callString("create_disk", 64, map[string]any{}, uefiVM)
	t.Cleanup(func() {
		// Before the VM's own cleanup: a failed test may leave it attached.
		env.Client.Call("detach_disk", uefiVM, diskCID)
		env.Client.Call("delete_disk", diskCID)
	})
	first, err := attachAndResolveSCSI(w, uefiVM, diskCID, bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created {
		t.Fatalf("VM %s: the new disk was not empty when it first appeared: %s", uefiVM, raw(first))
	}
	detach(w, uefiVM, diskCID)
	// Attached again, the disk is found by its (new) hint and holds what
	// the guest wrote on it.
	again, err := attachAndResolveSCSI(w, uefiVM, diskCID, bootTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || !strings.Contains(markerOf(again), "agent-uefi") {
		t.Fatalf("VM %s: the disk attached again lost what the guest wrote (marker %q): %s", uefiVM, markerOf(again), raw(again))
	}
	detach(w, uefiVM, diskCID)

	// Stemcell API 1: attach_disk rewrites the settings, here the env disc
	// (the guest reads it on its next boot; its content is checked here).
	v1 := env.Client
	v1.StemcellAPIVersion = 1
	v1VM := w.createVMWith(v1, "agent-v1", 23, nil)
	if _, run, err := v1.Call("attach_disk", v1VM, diskCID); err != nil {
		t.Fatalf("%v\nCPI log:\n%s", err, run.Stderr)
	}
	if err := checkEnvDiscNames(t, env, v1VM, diskCID); err != nil {
		t.Fatal(err)
	}
	// After a reboot the guest reads the rewritten env and finds the disk
	// from its settings hint by the SCSI rule, with the data on it.
	from := len(env.GuestReports(v1VM))
	if _, run, err := v1.Call("reboot_vm", v1VM); err != nil {
		t.Fatalf("%v\nCPI log:\n%s", err, run.Stderr)
	}
	resolved, _, err := env.WaitForReport(v1VM, from, bootTimeout, "persistent disk resolved from the env settings", func(r report) bool {
		return (r.Event == guestcheck.EventPersistent || r.Event == guestcheck.EventError) && r.DiskCID == diskCID
	})
	if err != nil {
		t.Fatal(err)
	}
	if resolved.Event != guestcheck.EventPersistent || resolved.Via != "scsi" {
		t.Fatalf("VM %s: after reboot_vm the guest did not find disk %s from its settings by the SCSI rule: %s", v1VM, diskCID, raw(resolved))
	}
	if _, run, err := v1.Call("detach_disk", v1VM, diskCID); err != nil {
		t.Fatalf("%v\nCPI log:\n%s", err, run.Stderr)
	}
	w.call("delete_vm", v1VM)

	w.stemcell = openstack
	biosVM, biosBoot := w.timedBoot("agent-bios", 21)
	if err := checkDomainBoots(env, biosVM, ""); err != nil {
		t.Fatal(err)
	}
	// firmware: efi boots the OpenStack twin (its FAT partition carries
	// syslinux.efi as well) with UEFI; its settings stay the config drive.
	started = time.Now()
	efiCID, run, err := env.Client.CreateVM("agent-os-efi", openstack, map[string]any{"memory": 384, "ephemeral_disk": 512, "firmware": "efi"},
		env.Networks(24), map[string]any{}, nil)
	if err != nil {
		t.Fatalf("create_vm of the OpenStack twin with firmware efi: %v\n%s", err, run.Stderr)
	}
	t.Cleanup(func() { env.Client.Call("delete_vm", efiCID) })
	if err := checkDomainBoots(env, efiCID, "efi"); err != nil {
		t.Fatal(err)
	}
	efiSettings, _, err := env.WaitForReport(efiCID, 0, bootTimeout, "settings report", func(r report) bool {
		return r.Event == guestcheck.EventSettings || r.Event == guestcheck.EventError
	})
	if err != nil {
		t.Fatal(err)
	}
	openstackEFIBoot := time.Since(started)
	if efiSettings.Event != guestcheck.EventSettings || efiSettings.Via == "cdrom-env" {
		t.Fatalf("VM %s (OpenStack stemcell, firmware efi) did not read its config drive: %s", efiCID, raw(efiSettings))
	}
	if _, err := checkBoot(env, efiCID, "agent-os-efi", w.manualIP(24), 0, bootTimeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE create_vm to the first guest report: UEFI (vSphere stemcell, OVMF): %.1f s; BIOS (OpenStack twin, SeaBIOS): %.1f s; create_vm to the settings report, OpenStack twin with firmware efi: %.1f s",
		uefiBoot.Seconds(), biosBoot.Seconds(), openstackEFIBoot.Seconds())
	w.call("delete_vm", efiCID)

	w.call("delete_vm", uefiVM)
	w.call("delete_vm", biosVM)
	w.call("delete_disk", diskCID)
	w.call("delete_stemcell", vsphere)
	w.call("delete_stemcell", openstack)
	if left := env.LeftOver(); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// importVSphereStemcell imports the vSphere test stemcell into w's
// environment, deleted at the end of the test.
func importVSphereStemcell(w *world) string {
	w.t.Helper()
	if _, err := os.Stat(vSphereStemcell); err != nil {
		w.t.Fatalf("no vSphere test stemcell: run `make vsphere-test-stemcell` (scripts/test.sh does): %v", err)
	}
	image, props, err := devenv.UnpackStemcell(vSphereStemcell, w.t.TempDir())
	if err != nil {
		w.t.Fatal(err)
	}
	cid := w.callString("create_stemcell", image, props.CloudProperties)
	w.t.Cleanup(func() { w.env.Client.Call("delete_stemcell", cid) })
	return cid
}

// attachAndResolveSCSI attaches the disk and checks the guest finds it by
// the hint's SCSI target (checkSCSIDiskResolves), from the reports that
// come after the attach.
func attachAndResolveSCSI(w *world, vmCID, diskCID string, timeout time.Duration) (report, error) {
	w.t.Helper()
	from := len(w.env.GuestReports(vmCID))
	return checkSCSIDiskResolves(w.env, vmCID, w.attach(vmCID, diskCID), from, timeout)
}

// checkSCSIDiskResolves waits for the disk attach_disk just plugged (the
// first disk report from index from) and requires the vSphere agent's
// rule, run in the guest, to find it by the hint's volume_id: the hint
// must name a SCSI target and no id (with an id the agent would take its
// scsi-id resolver instead), and the guest's SCSI address of the disk
// must be that target on the root disk's host.
func checkSCSIDiskResolves(env *devenv.Env, vmCID string, hint guestcheck.Hint, from int, timeout time.Duration) (report, error) {
	if hint.VolumeID == "" || hint.ID != "" {
		return report{}, fmt.Errorf("VM %s: attach_disk's hint %+v; a vSphere stemcell's agent needs a volume_id (the SCSI target) and no id", vmCID, hint)
	}
	seen, _, err := env.WaitForReport(vmCID, from, timeout, "report of the hot-plugged disk", func(r report) bool {
		return r.Event == guestcheck.EventDisk
	})
	if err != nil {
		return report{}, err
	}
	if seen.SCSIVolumeID != hint.VolumeID {
		return seen, fmt.Errorf("VM %s: the vSphere agent's SCSI rule finds the hot-plugged disk %s by volume_id %q, but attach_disk's hint says %q: %s", vmCID, seen.Device, seen.SCSIVolumeID, hint.VolumeID, raw(seen))
	}
	return seen, nil
}

// checkEphemeralSCSI requires the guest to have found its ephemeral disk
// from the settings hint by the vSphere agent's SCSI rule.
func checkEphemeralSCSI(env *devenv.Env, vmCID string, from int) error {
	eph, _, err := env.WaitForReport(vmCID, from, bootTimeout, "ephemeral disk resolved", func(r report) bool {
		return r.Event == guestcheck.EventEphemeral || (r.Event == guestcheck.EventError && strings.HasPrefix(r.Message, guestcheck.EventEphemeral))
	})
	if err != nil {
		return err
	}
	if eph.Event != guestcheck.EventEphemeral || eph.Via != "scsi" {
		return fmt.Errorf("VM %s: the guest did not find its ephemeral disk by the SCSI rule: %s", vmCID, raw(eph))
	}
	return nil
}

// detach detaches the disk and checks get_disks no longer names it.
func detach(w *world, vmCID, diskCID string) {
	w.t.Helper()
	w.call("detach_disk", vmCID, diskCID)
	if got := string(w.call("get_disks", vmCID)); strings.Contains(got, diskCID) {
		w.t.Fatalf("get_disks after detach_disk still names %s: %s", diskCID, got)
	}
}

// checkEnvDiscNames reads the VM's settings disc out of the pool: it must
// be an env disc (the file env, no config-2 layout) whose settings name
// diskCID among the persistent disks.
func checkEnvDiscNames(t *testing.T, env *devenv.Env, vmCID, diskCID string) error {
	path := filepath.Join(t.TempDir(), "env.iso")
	if out, err := env.Virsh("vol-download", "--pool", env.Pool, vmCID+"-config.iso", path); err != nil {
		return fmt.Errorf("downloading the settings disc of %s: %s", vmCID, out)
	}
	iso, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := configdrive.ReadUserData(iso); err == nil {
		return fmt.Errorf("VM %s: its settings disc has a config-2 layout; a vSphere stemcell reads the env file", vmCID)
	}
	var doc []byte
	for _, name := range []string{"env", "ENV"} {
		if doc, err = configdrive.ReadFile(iso, name); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("VM %s: settings disc without env: %w", vmCID, err)
	}
	var settings struct {
		Disks struct {
			Persistent map[string]json.RawMessage `json:"persistent"`
		} `json:"disks"`
	}
	if err := json.Unmarshal(doc, &settings); err != nil {
		return fmt.Errorf("VM %s: env is not settings JSON: %w", vmCID, err)
	}
	if _, ok := settings.Disks.Persistent[diskCID]; !ok {
		return fmt.Errorf("VM %s: env after attach_disk (stemcell API 1) names persistent disks %v, not %s", vmCID, settings.Disks.Persistent, diskCID)
	}
	return nil
}

// timedBoot creates a VM and waits for its first guest report; it returns
// the VM and the time from create_vm's start to that report.
func (w *world) timedBoot(agentID string, host int) (string, time.Duration) {
	w.t.Helper()
	started := time.Now()
	cid := w.createVM(agentID, host, nil)
	if _, _, err := w.env.WaitForReport(cid, 0, bootTimeout, "first report", func(report) bool { return true }); err != nil {
		w.t.Fatal(err)
	}
	return cid, time.Since(started)
}

// checkDomainBoots reads the VM's definition as libvirt holds it: UEFI
// VMs have the loader libvirt's firmware auto-selection chose (not Secure
// Boot) and an NVRAM of their own; BIOS VMs have neither.
func checkDomainBoots(env *devenv.Env, vmCID, firmware string) error {
	out, err := env.Virsh("dumpxml", vmCID)
	if err != nil {
		return fmt.Errorf("virsh dumpxml %s: %s", vmCID, out)
	}
	var dom struct {
		OS struct {
			Firmware string `xml:"firmware,attr"`
			Loader   struct {
				Secure string `xml:"secure,attr"`
				Path   string `xml:",chardata"`
			} `xml:"loader"`
			NVRAM string `xml:"nvram"`
		} `xml:"os"`
	}
	if err := xml.Unmarshal([]byte(out), &dom); err != nil {
		return fmt.Errorf("parsing the XML of %s: %w", vmCID, err)
	}
	// libvirt may keep firmware='efi' or replace it with the loader and
	// NVRAM it chose: the loader is what counts.
	os := dom.OS
	switch {
	case firmware == "" && os.Firmware != "":
		return fmt.Errorf("VM %s: os firmware %q, want none", vmCID, os.Firmware)
	case firmware == "efi" && (os.Loader.Path == "" || os.Loader.Secure == "yes" || os.NVRAM == ""):
		return fmt.Errorf("VM %s: UEFI loader %q (secure %q), nvram %q; want a non-secure OVMF and an NVRAM:\n%s", vmCID, os.Loader.Path, os.Loader.Secure, os.NVRAM, out)
	case firmware == "" && os.Loader.Path != "":
		return fmt.Errorf("VM %s boots BIOS but has loader %s", vmCID, os.Loader.Path)
	}
	if firmware == "efi" && !strings.Contains(filepath.Base(os.Loader.Path), "OVMF") {
		return fmt.Errorf("VM %s: loader %s is not OVMF", vmCID, os.Loader.Path)
	}
	return nil
}
