package xmldef

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// hvmCase is what one hypervisor's domain must spell.
type hvmCase struct {
	profile                     hypervisor.Profile
	diskBus, discBus, discDev   string
	diskDriver, nicModel        string
	firmware, controller        string
	persistentAtCreate, hotplug string
	bridgedNICs                 bool
}

var hvmCases = []hvmCase{
	{hypervisor.VBox, "scsi", "ide", "hdc", "", "82540EM", "efi", "lsilogic", "sdc", "sdd", false},
	{hypervisor.Xen, "xen", "ide", "hdc", "qemu", "", "", "", "xvdc", "xvdd", false},
	{hypervisor.VMware, "scsi", "ide", "hdc", "", "vmxnet3", "efi", "lsilogic", "sdc", "sdd", true},
}

func hvmPlan(c hvmCase) Plan {
	spec := secretSpec()
	p := c.profile
	spec.NICs[0].MAC, spec.NICs[1].MAC = p.MACPrefix+":00:00:01", p.MACPrefix+":00:00:02"
	plan := NewPlan(spec, p, p.DomainType, "", 0, "/store/console/"+testCID+".log")
	plan.RootPath = "/pool/" + RootVolumeName(testCID)
	plan.EphemeralPath = "/pool/" + EphemeralVolumeName(testCID)
	plan.ConfigPath = "/pool/" + ConfigDriveVolumeName(testCID)
	plan.PersistentDisks = []libvirtxml.DomainDisk{PersistentDiskDevice("/pool/disk-at-create", disk.FormatQcow2, "disk-at-create", c.persistentAtCreate)}
	return plan
}

// create_vm: each hypervisor's domain, checked by libvirt's schema and
// for the devices its stemcells need.
func TestHVMDomainsPerHypervisor(t *testing.T) {
	for _, c := range hvmCases {
		t.Run(c.profile.Driver, func(t *testing.T) {
			dom, doc := rebuilt(t, hvmPlan(c))
			validateXML(t, "domain", doc)
			checkHVMDomain(t, c, dom, doc)
		})
	}
}

func checkHVMDomain(t *testing.T, c hvmCase, dom libvirtxml.Domain, doc string) {
	t.Helper()
	p := c.profile
	if dom.Type != p.DomainType || dom.OS.Type.Type != "hvm" || dom.OS.Firmware != c.firmware || dom.Features.ACPI == nil {
		t.Errorf("type %q, os %+v; want a %s hvm guest with firmware %q and ACPI", dom.Type, dom.OS, p.DomainType, c.firmware)
	}
	want := []struct{ device, target, bus, source string }{
		{"disk", p.RootTarget, c.diskBus, "/pool/" + RootVolumeName(testCID)},
		{"disk", p.EphemeralTarget, c.diskBus, "/pool/" + EphemeralVolumeName(testCID)},
		{"cdrom", c.discDev, c.discBus, "/pool/" + ConfigDriveVolumeName(testCID)},
		{"disk", c.persistentAtCreate, c.diskBus, "/pool/disk-at-create"},
	}
	if len(dom.Devices.Disks) != len(want) {
		t.Fatalf("%d disks, want %d:\n%s", len(dom.Devices.Disks), len(want), doc)
	}
	for i, w := range want {
		d := dom.Devices.Disks[i]
		got := []string{d.Device, d.Target.Dev, d.Target.Bus, DiskSourcePath(d)}
		if strings.Join(got, " ") != strings.Join([]string{w.device, w.target, w.bus, w.source}, " ") {
			t.Errorf("disk %d = %v, want %+v", i, got, w)
		}
		if d.Serial != "" || d.Boot != nil || driverName(d) != c.diskDriver {
			t.Errorf("disk %d: serial %q, boot %+v, driver %q; want no serial, no per-device boot, driver %q", i, d.Serial, d.Boot, driverName(d), c.diskDriver)
		}
	}
	for i, iface := range dom.Devices.Interfaces {
		model := ""
		if iface.Model != nil {
			model = iface.Model.Type
		}
		if !strings.HasPrefix(iface.MAC.Address, strings.ToLower(p.MACPrefix)) || model != c.nicModel || iface.ROM != nil {
			t.Errorf("NIC %d: MAC %s model %q; want %s… model %q", i, iface.MAC.Address, model, p.MACPrefix, c.nicModel)
		}
		if bridged := iface.Source.Bridge != nil; bridged != c.bridgedNICs {
			t.Errorf("NIC %d: source %+v; bridged %v, want %v", i, iface.Source, bridged, c.bridgedNICs)
		}
	}
	controller := ""
	for _, ctl := range dom.Devices.Controllers {
		if ctl.Type == "scsi" {
			controller = ctl.Model
		}
	}
	if controller != c.controller || dom.CPU != nil || dom.Devices.MemBalloon != nil || len(dom.Devices.RNGs) != 0 {
		t.Errorf("scsi controller %q, cpu %+v, balloon %+v, rngs %d; want %q and no QEMU devices", controller, dom.CPU, dom.Devices.MemBalloon, len(dom.Devices.RNGs), c.controller)
	}
	if strings.Contains(doc, "virtio") || strings.Contains(doc, "mbus") {
		t.Errorf("QEMU devices or agent settings in the %s domain:\n%s", p.Driver, doc)
	}
}

func driverName(d libvirtxml.DomainDisk) string {
	if d.Driver == nil {
		return ""
	}
	return d.Driver.Name
}

// attach_disk, detach_disk and set_vm_metadata: the domain each would
// leave, checked by libvirt's schema; the device document attach_disk
// sends is the one inside it.
func TestHVMDomainChangesPassTheSchema(t *testing.T) {
	for _, c := range hvmCases {
		t.Run(c.profile.Driver, func(t *testing.T) {
			dom, _ := rebuilt(t, hvmPlan(c))
			device, err := PersistentDiskFor(c.profile, "/pool/disk-hotplug", disk.FormatRaw, "disk-hotplug", c.hotplug)
			if err != nil {
				t.Fatal(err)
			}
			devDoc, err := device.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if device.Target.Bus != c.diskBus || device.Serial != "" || driverName(device) != c.diskDriver {
				t.Errorf("attach device %s; want bus %s, no serial, driver %q", devDoc, c.diskBus, c.diskDriver)
			}
			dom.Devices.Disks = append(dom.Devices.Disks, device)
			validateDomain(t, "after attach_disk", dom)
			if FindDisk(&dom, "disk-hotplug", "/pool/disk-hotplug") == nil {
				t.Fatal("the attached disk is not found by its source")
			}
			dom.Devices.Disks = withoutDisk(dom.Devices.Disks, "/pool/disk-hotplug")
			validateDomain(t, "after detach_disk", dom)
			meta := vm.Metadata{"deployment": "cf", "job": "router", "index": "0"}
			marker, err := ParseMarker(dom.Metadata.XML)
			if err != nil {
				t.Fatal(err)
			}
			element, err := marker.WithTags(meta).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			dom.Title, dom.Description, dom.Metadata = TitleFor(testCID, meta), DescriptionFor(meta), &libvirtxml.DomainMetadata{XML: element}
			validateDomain(t, "after set_vm_metadata", dom)
		})
	}
}

func withoutDisk(disks []libvirtxml.DomainDisk, source string) []libvirtxml.DomainDisk {
	var kept []libvirtxml.DomainDisk
	for _, d := range disks {
		if DiskSourcePath(d) != source {
			kept = append(kept, d)
		}
	}
	return kept
}

func validateDomain(t *testing.T, when string, dom libvirtxml.Domain) {
	t.Helper()
	doc, err := dom.Marshal()
	if err != nil {
		t.Fatalf("%s: marshal: %v", when, err)
	}
	validateXML(t, "domain", doc)
}

// A QEMU disk is not restyled: the QEMU profile has no Devices.
func TestRestyleLeavesQEMUDisks(t *testing.T) {
	d := PersistentDiskDevice("/p", disk.FormatRaw, "virtio-abcdefgh23456", "vdc")
	if got := Restyle(hypervisor.QEMU, d); got.Target.Bus != "virtio" || got.Serial == "" || got.Driver.Name != "qemu" {
		t.Errorf("QEMU disk restyled: %+v", got)
	}
}

// The schema check is a real check: a domain libvirt's schema refuses
// (a disk bus it does not know) fails it.
func TestSchemaRefusesAWrongBus(t *testing.T) {
	dom, _ := rebuilt(t, hvmPlan(hvmCases[0]))
	dom.Devices.Disks[0].Target.Bus = "pcie-nonsense"
	doc, _ := dom.Marshal()
	if schemaAccepts(t, "domain", doc) {
		t.Fatal("virt-xml-validate accepted a disk bus libvirt does not have")
	}
}
