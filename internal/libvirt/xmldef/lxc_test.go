package xmldef

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

func lxcPlan() Plan {
	spec := secretSpec()
	spec.NICs[0].MAC, spec.NICs[1].MAC = "00:16:3E:00:00:01", "00:16:3e:00:00:02"
	p := NewPlan(spec, hypervisor.LXC, "lxc", "", 0, "")
	p.RootDir = "/store/lxc/vms/" + testCID + "/rootfs"
	p.Filesystems = []libvirtxml.DomainFilesystem{DiskFilesystem("/pool/disk-1", "/warden-cpi-dev/disk-1")}
	p.Addresses = map[string]NICAddress{"00:16:3e:00:00:01": {IP: "10.0.0.5", Prefix: 24, Gateway: "10.0.0.1"}}
	return p
}

// A container: init as program, root and disks as filesystems, limits
// from the cloud properties, a static address on the manual NIC only, no
// QEMU devices; libvirt's schema accepts it.
func TestLXCDomain(t *testing.T) {
	dom, doc := rebuilt(t, lxcPlan())
	validateXML(t, "domain", doc)
	if dom.Type != "lxc" || dom.OS.Type.Type != "exe" || dom.OS.Init != "/sbin/init" {
		t.Errorf("type %q, os %+v; want an lxc domain running /sbin/init", dom.Type, dom.OS)
	}
	if dom.MemoryTune == nil || dom.MemoryTune.HardLimit.Value != 2048 || dom.CPUTune.Quota.Value != 2*cpuPeriodMicros {
		t.Errorf("memtune %+v, cputune %+v; want a 2048 MiB hard limit and a 2-CPU quota", dom.MemoryTune, dom.CPUTune)
	}
	fs := dom.Devices.Filesystems
	if len(fs) != 2 || fs[0].Target.Dir != "/" || fs[0].Source.Mount.Dir != lxcPlan().RootDir ||
		fs[1].Target.Dir != "/warden-cpi-dev/disk-1" || FilesystemImage(fs[1]) != "/pool/disk-1" || fs[1].Driver.Type != "loop" {
		t.Errorf("filesystems %+v; want the root directory then the disk image at its hint path", fs)
	}
	if len(dom.Devices.Disks) != 0 || len(dom.Devices.Serials) != 0 || dom.Devices.Consoles[0].Source.Pty == nil {
		t.Errorf("devices %+v; want no disks, no serial, a pty console", dom.Devices)
	}
	ifs := dom.Devices.Interfaces
	if len(ifs[0].IP) != 1 || ifs[0].IP[0].Address != "10.0.0.5" || ifs[0].IP[0].Prefix != 24 || ifs[0].Route[0].Gateway != "10.0.0.1" {
		t.Errorf("manual NIC %+v; want 10.0.0.5/24 via 10.0.0.1", ifs[0])
	}
	if len(ifs[1].IP) != 0 || ifs[1].Model != nil {
		t.Errorf("dynamic NIC %+v; want no address and no QEMU model", ifs[1])
	}
	if strings.Contains(doc, "config-2") || strings.Contains(doc, "virtio") {
		t.Errorf("QEMU devices in a container:\n%s", doc)
	}
}
