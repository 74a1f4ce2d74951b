package xmldef

import (
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

// TestDomainFirmwareAndDelivery: a UEFI VM asks libvirt's firmware
// auto-selection for UEFI without Secure Boot; a BIOS VM names no
// firmware (QEMU's SeaBIOS); either way the settings disc stays the SATA
// CD-ROM the agent mounts as /dev/sr0, and the marker records both facts
// for the calls after create_vm. Every variant passes libvirt's schema.
func TestDomainFirmwareAndDelivery(t *testing.T) {
	cases := []struct {
		name, firmware string
		delivery       hypervisor.Delivery
		wantFirmware   string
	}{
		{"vsphere-uefi", "efi", hypervisor.DeliveryCDROMEnv, "efi"},
		{"openstack-uefi", "efi", hypervisor.DeliveryConfigDrive, "efi"},
		{"openstack-bios", "bios", hypervisor.DeliveryConfigDrive, ""},
		{"unrecorded", "", hypervisor.DeliveryConfigDrive, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, machine := range []string{"q35", "pc"} {
				p := testPlan("qemu", machine, 2)
				p.WithBoot(c.firmware, c.delivery)
				def, doc := rebuilt(t, p)
				validateXML(t, "domain", doc)
				if def.OS.Firmware != c.wantFirmware {
					t.Errorf("%s: os firmware %q, want %q", machine, def.OS.Firmware, c.wantFirmware)
				}
				if c.wantFirmware == "efi" {
					features := map[string]string{}
					for _, f := range def.OS.FirmwareInfo.Features {
						features[f.Name] = f.Enabled
					}
					if features["secure-boot"] != "no" || features["enrolled-keys"] != "no" {
						t.Errorf("%s: firmware features %v; want secure-boot and enrolled-keys off", machine, features)
					}
				} else if def.OS.FirmwareInfo != nil {
					t.Errorf("%s: BIOS domain has firmware features %+v", machine, def.OS.FirmwareInfo)
				}
				disc := def.Devices.Disks[2]
				if disc.Device != "cdrom" || disc.Target.Bus != "sata" || disc.Source.File.File != p.ConfigPath {
					t.Errorf("%s: settings disc %+v on %+v; want a SATA cdrom of %s", machine, disc, disc.Target, p.ConfigPath)
				}
				marker, err := ParseMarker(def.Metadata.XML)
				if err != nil || marker.Firmware != c.firmware || marker.Delivery != string(c.delivery) {
					t.Errorf("%s: marker %+v, %v; want firmware %q delivery %q", machine, marker, err, c.firmware, c.delivery)
				}
			}
		})
	}
}
