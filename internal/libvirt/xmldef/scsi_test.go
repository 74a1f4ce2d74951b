package xmldef

import (
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

// vSpherePlan is a QEMU plan for a vSphere stemcell's VM with one
// persistent disk named at create_vm.
func vSpherePlan(machine string, hotplug int) Plan {
	target, _ := hypervisor.QEMUvSphere.PersistentTarget(0)
	p := testPlan("qemu", machine, hotplug, PersistentDiskDevice("/pool/disk-at-create", disk.FormatQcow2, "disk-at-create", target))
	p.WithBoot(FirmwareEFI, hypervisor.DeliveryCDROMEnv)
	return p
}

func scsiControllerOf(def libvirtxml.Domain) *libvirtxml.DomainController {
	for i, c := range def.Devices.Controllers {
		if c.Type == "scsi" {
			return &def.Devices.Controllers[i]
		}
	}
	return nil
}

// create_vm of a vSphere stemcell on QEMU: every hard disk on the
// virtio-scsi controller at the target its name numbers (what the hint's
// volume_id says), the root disk at target 0 (where the agent finds the
// SCSI host) and still the boot disk, the env disc on SATA, the marker
// saying so, and the controller's PCIe slot not taken from the spares.
func TestVSphereDomainPutsDisksOnSCSITargets(t *testing.T) {
	for _, machine := range []string{"q35", "pc"} {
		t.Run(machine, func(t *testing.T) {
			p := vSpherePlan(machine, 3)
			def, doc := rebuilt(t, p)
			validateXML(t, "domain", doc)
			c := scsiControllerOf(def)
			if c == nil || c.Model != "virtio-scsi" || c.Index == nil || *c.Index != SCSIController {
				t.Fatalf("SCSI controller %+v; want virtio-scsi index %d", c, SCSIController)
			}
			want := []struct {
				source, dev string
				target      int
			}{
				{p.RootPath, "sda", 0}, {p.EphemeralPath, "sdb", 1}, {"/pool/disk-at-create", "sdc", 2},
			}
			for _, w := range want {
				d := FindDisk(&def, "", w.source)
				if d == nil {
					t.Fatalf("no disk of %s", w.source)
				}
				got, ok := SCSITargetOf(*d)
				if !ok || got != w.target || d.Target.Dev != w.dev || d.Address.Drive.Unit == nil || *d.Address.Drive.Unit != 0 {
					t.Errorf("disk of %s: target %s at %+v; want %s at SCSI target %d, LUN 0", w.source, d.Target.Dev, d.Address.Drive, w.dev, w.target)
				}
			}
			if root := FindDisk(&def, "", p.RootPath); root.Boot == nil || root.Boot.Order != 1 {
				t.Errorf("root disk boot %+v; want order 1", root.Boot)
			}
			disc := def.Devices.Disks[2]
			if disc.Device != "cdrom" || disc.Target.Bus != "sata" || disc.Target.Dev == "sda" {
				t.Errorf("env disc %+v; want a SATA cdrom whose name no SCSI disk takes", disc.Target)
			}
			marker, _ := ParseMarker(def.Metadata.XML)
			if marker.DiskBus != hypervisor.DiskBusSCSI {
				t.Errorf("marker disk bus %q; want scsi", marker.DiskBus)
			}
			if machine == "q35" {
				// 2 NICs, balloon, RNG and the controller, plus 3 spare.
				if ports := countRootPorts(def); ports != 5+3 {
					t.Errorf("%d pcie-root-ports; want 8", ports)
				}
			}
		})
	}
}

func countRootPorts(def libvirtxml.Domain) int {
	n := 0
	for _, c := range def.Devices.Controllers {
		if c.Model == "pcie-root-port" {
			n++
		}
	}
	return n
}

// An OpenStack stemcell's VM keeps virtio-blk disks and no SCSI controller.
func TestConfigDriveDomainHasNoSCSI(t *testing.T) {
	p := testPlan("qemu", "q35", 2)
	p.WithBoot(FirmwareEFI, hypervisor.DeliveryConfigDrive)
	def, _ := rebuilt(t, p)
	if c := scsiControllerOf(def); c != nil {
		t.Errorf("SCSI controller %+v in an OpenStack stemcell's domain", c)
	}
	for _, d := range def.Devices.Disks {
		if _, ok := SCSITargetOf(d); ok {
			t.Errorf("disk %s on SCSI", d.Target.Dev)
		}
	}
	if marker, _ := ParseMarker(def.Metadata.XML); marker.DiskBus != "" {
		t.Errorf("marker disk bus %q; want none", marker.DiskBus)
	}
}

// attach_disk on such a VM: the free target's device goes to the matching
// SCSI target, the hint names it, and the domain with it (and after
// detach) passes the schema.
func TestVSphereAttachedDiskIsAtItsHintsTarget(t *testing.T) {
	p := vSpherePlan("q35", 2)
	def, _ := rebuilt(t, p)
	profile := p.Profile
	target, err := FreeTarget(profile, UsedTargets(&def))
	if err != nil || target != "sdd" {
		t.Fatalf("free target %q, %v; want sdd", target, err)
	}
	device, err := PersistentDiskFor(profile, "/pool/disk-hotplug", disk.FormatRaw, "disk-hotplug", target)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := SCSITargetOf(device)
	hint := profile.PersistentHint("disk-hotplug", target)
	if !ok || got != 3 || hint.VolumeID != "3" || device.Serial != disk.DiskSerial("disk-hotplug") {
		t.Errorf("device at SCSI target %d (%v) with serial %q, hint %+v; want target 3, volume_id 3, the disk's serial", got, ok, device.Serial, hint)
	}
	def.Devices.Disks = append(def.Devices.Disks, device)
	validateDomain(t, "after attach_disk", def)
	def.Devices.Disks = withoutDisk(def.Devices.Disks, "/pool/disk-hotplug")
	validateDomain(t, "after detach_disk", def)
	if eph := profile.EphemeralHint(testCID); eph.VolumeID != "1" {
		t.Errorf("ephemeral hint %+v; want volume_id 1", eph)
	}
}

func TestOnSCSIRefusesATargetWithoutANumber(t *testing.T) {
	for _, dev := range []string{"", "sdA", "nvme0n1", "sd"} {
		d := FileDiskDevice("/p", "raw", "", dev)
		if _, err := OnSCSI(d); err == nil {
			t.Errorf("OnSCSI(%q) succeeded", dev)
		}
	}
}
