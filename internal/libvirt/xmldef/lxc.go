package xmldef

import (
	"strings"

	"libvirt.org/go/libvirtxml"
)

// ContainerInit is what a container runs as PID 1: warden stemcells'
// init.
const ContainerInit = "/sbin/init"

// cpuPeriodMicros is the CFS period the CPU quota is counted in.
const cpuPeriodMicros = 100000

// NICAddress is a static IPv4 address libvirt's lxc driver puts on a
// container's NIC before init starts, with the default route when the
// network is the default gateway's: a container's agent cannot be relied
// on to configure networking (warden agents do not).
type NICAddress struct {
	IP      string
	Prefix  uint
	Gateway string // empty: no route
}

// decorateLXC makes dom a container: init as the program, the root
// directory and persistent disks as filesystems, a pty console (the only
// console the lxc driver has), the cloud properties' CPUs as a CFS quota
// and memory as a hard limit. Block disks, serials and ISO drives are QEMU
// devices and are dropped.
func decorateLXC(dom *libvirtxml.Domain, p Plan) {
	dom.OS = &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "exe"}, Init: ContainerInit}
	dom.MemoryTune = &libvirtxml.DomainMemoryTune{HardLimit: &libvirtxml.DomainMemoryTuneLimit{Value: uint64(p.MemoryMiB), Unit: "MiB"}}
	dom.CPUTune = &libvirtxml.DomainCPUTune{
		Period: &libvirtxml.DomainCPUTunePeriod{Value: cpuPeriodMicros},
		Quota:  &libvirtxml.DomainCPUTuneQuota{Value: int64(p.CPUs) * cpuPeriodMicros},
	}
	devices := dom.Devices
	devices.Disks = nil
	devices.Serials = nil
	devices.Consoles = []libvirtxml.DomainConsole{{Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}}}
	root := libvirtxml.DomainFilesystem{
		AccessMode: "passthrough",
		Source:     &libvirtxml.DomainFilesystemSource{Mount: &libvirtxml.DomainFilesystemSourceMount{Dir: p.RootDir}},
		Target:     &libvirtxml.DomainFilesystemTarget{Dir: "/"},
	}
	devices.Filesystems = append([]libvirtxml.DomainFilesystem{root}, p.Filesystems...)
	for i := range devices.Interfaces {
		iface := &devices.Interfaces[i]
		addr, ok := p.Addresses[strings.ToLower(iface.MAC.Address)]
		if !ok {
			continue
		}
		iface.IP = []libvirtxml.DomainInterfaceIP{{Address: addr.IP, Family: "ipv4", Prefix: addr.Prefix}}
		if addr.Gateway != "" {
			iface.Route = []libvirtxml.DomainInterfaceRoute{{Family: "ipv4", Address: "0.0.0.0", Prefix: 0, Gateway: addr.Gateway}}
		}
	}
}

// DiskFilesystem is a persistent disk of a container: the ext4 image at
// imagePath, loop-mounted by libvirt at dir in the guest.
func DiskFilesystem(imagePath, dir string) libvirtxml.DomainFilesystem {
	return libvirtxml.DomainFilesystem{
		AccessMode: "passthrough",
		Driver:     &libvirtxml.DomainFilesystemDriver{Type: "loop", Format: "raw"},
		Source:     &libvirtxml.DomainFilesystemSource{File: &libvirtxml.DomainFilesystemSourceFile{File: imagePath}},
		Target:     &libvirtxml.DomainFilesystemTarget{Dir: dir},
	}
}

// FilesystemImage is the image path of a file filesystem ("" for others).
func FilesystemImage(fs libvirtxml.DomainFilesystem) string {
	if fs.Source == nil || fs.Source.File == nil {
		return ""
	}
	return fs.Source.File.File
}
