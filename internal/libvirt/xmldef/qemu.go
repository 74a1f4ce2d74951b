package xmldef

import "libvirt.org/go/libvirtxml"

// decorateQEMU makes dom a QEMU/KVM guest: a PC machine with ACPI, the
// CPU model its domain type allows, virtio NICs, balloon and RNG, and the
// PCIe root ports that hot-plugging needs on q35.
func decorateQEMU(dom *libvirtxml.Domain, p Plan) {
	dom.OS = &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm", Machine: p.Machine}}
	if p.Firmware == FirmwareEFI {
		dom.OS.Firmware = FirmwareEFI
		dom.OS.FirmwareInfo = uefiWithoutSecureBoot()
	}
	dom.Features = &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}}
	dom.CPU = CPUFor(p.DomainType)
	devices := dom.Devices
	for i := range devices.Interfaces {
		devices.Interfaces[i].Model = &libvirtxml.DomainInterfaceModel{Type: "virtio"}
		// BOSH VMs never boot from the network; without the iPXE option
		// ROM the firmware skips a slow step of every boot.
		devices.Interfaces[i].ROM = &libvirtxml.DomainROM{Enabled: "no"}
	}
	devices.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "virtio"}
	devices.RNGs = []libvirtxml.DomainRNG{{
		Model:   "virtio",
		Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
	}}
	pciDevices := pciDevicesAtDefine(devices.Disks, devices.Interfaces)
	var scsi []libvirtxml.DomainController
	if onSCSIController(p.Profile) {
		// The controller takes a root port; the disks on it take none,
		// so hot-plugging them needs no spare port.
		scsi = []libvirtxml.DomainController{SCSIControllerDevice()}
		pciDevices++
	}
	devices.Controllers = append(ControllersFor(p.Machine, p.HotplugSlots+pciDevices), scsi...)
}

// FirmwareEFI is the firmware value of a UEFI domain.
const FirmwareEFI = "efi"

// uefiWithoutSecureBoot asks libvirt's firmware auto-selection for a UEFI
// build without Secure Boot: Debian's ovmf also describes builds with
// Microsoft's keys enrolled (which would refuse a stemcell's unsigned boot
// loader) and ones that need SMM. The NVRAM (variable store) libvirt makes
// from the template beside the firmware goes with the domain on undefine
// (DomainUndefineNvram).
func uefiWithoutSecureBoot() *libvirtxml.DomainOSFirmwareInfo {
	return &libvirtxml.DomainOSFirmwareInfo{Features: []libvirtxml.DomainOSFirmwareFeature{
		{Enabled: "no", Name: "secure-boot"},
		{Enabled: "no", Name: "enrolled-keys"},
	}}
}

// CPUFor: KVM passes the host CPU through; TCG cannot, and 'maximum' gives
// the guest every feature QEMU can emulate.
func CPUFor(domainType string) *libvirtxml.DomainCPU {
	if domainType == "kvm" {
		return &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	return &libvirtxml.DomainCPU{Mode: "maximum"}
}

// pciDevicesAtDefine counts the PCIe devices of a new domain: libvirt puts
// each on one of the root ports we list, so those ports are not spare.
// The SATA CD-ROM sits on the built-in SATA controller.
func pciDevicesAtDefine(disks []libvirtxml.DomainDisk, ifaces []libvirtxml.DomainInterface) int {
	const balloonAndRNG = 2
	count := len(ifaces) + balloonAndRNG
	for _, d := range disks {
		if d.Target != nil && d.Target.Bus == "virtio" {
			count++
		}
	}
	return count
}

// ControllersFor: on q35 every hot-plugged PCIe device needs an empty
// pcie-root-port, and ports cannot be added to a running domain, so spare
// ones are reserved up front. The 'pc' machine's PCI bus hot-plugs
// directly. USB is left out: nothing uses it and it would take a slot.
func ControllersFor(machine string, rootPorts int) []libvirtxml.DomainController {
	controllers := []libvirtxml.DomainController{{Type: "usb", Model: "none"}}
	if machine != "q35" {
		return controllers
	}
	// Unindexed controllers get indices in document order, so the root
	// bus must come first and claim index 0.
	rootIndex := uint(0)
	controllers = append(controllers, libvirtxml.DomainController{Type: "pci", Model: "pcie-root", Index: &rootIndex})
	for range rootPorts {
		controllers = append(controllers, libvirtxml.DomainController{Type: "pci", Model: "pcie-root-port"})
	}
	return controllers
}
