// Package vm holds what a BOSH VM is, independent of the runtime that runs it:
// its cloud properties, its CID and the spec a backend builds it from.
package vm

import (
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cloudprops"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// Bounds far beyond any host, below where sizes would wrap around when
// converted (MiB to KiB or bytes): QEMU's own vCPU limit, and 1 PiB.
const (
	MaxCPUs      = 4096
	MaxMemoryMiB = 1 << 30
)

// Defaults when cloud_properties leave a size out.
const (
	DefaultCPUs             = 1
	DefaultMemoryMiB        = 1024
	DefaultEphemeralDiskMiB = 10240
)

// Props are the VM cloud_properties we accept.
type Props struct {
	CPUs             int `json:"cpus"`
	MemoryMiB        int `json:"memory"`
	EphemeralDiskMiB int `json:"ephemeral_disk"`
	// SSHPublicKey joins cpi.json's in the VM's meta-data public-keys.
	SSHPublicKey string `json:"ssh_public_key"`
	// Firmware is "efi" or "bios"; empty means what the stemcell boots
	// with (efi when its OVF says so, else bios).
	Firmware string `json:"firmware"`
	// Container is for container runtimes (Docker) only; VMs ignore it.
	Container ContainerProps `json:"container"`
}

// Init values of ContainerProps.
const (
	InitAuto    = ""        // decided from the stemcell's /sbin/init
	InitSystemd = "systemd" // systemd as PID 1 (tmpfs /run, SIGRTMIN+3, ...)
	InitPlain   = "plain"   // any other PID 1, run as it is
)

// ContainerProps override what a container runtime decides by itself.
type ContainerProps struct {
	// Init is InitAuto, InitSystemd or InitPlain.
	Init string `json:"init"`
	// Privileged asks for a privileged container (every capability, all
	// devices); only on explicit request, since a daemon whose own
	// bounding set is short of a capability cannot start one.
	Privileged bool `json:"privileged"`
}

// Firmware values of VM cloud_properties.
const (
	FirmwareEFI  = "efi"
	FirmwareBIOS = "bios"
)

// rawProps also accepts cpu/ram/disk, the names bosh-deployment's cloud
// configs (and calculate_vm_cloud_properties' input) use.
type rawProps struct {
	CPUs             *int           `json:"cpus"`
	MemoryMiB        *int           `json:"memory"`
	EphemeralDiskMiB *int           `json:"ephemeral_disk"`
	CPU              *int           `json:"cpu"`
	RAM              *int           `json:"ram"`
	Disk             *int           `json:"disk"`
	SSHPublicKey     string         `json:"ssh_public_key"`
	Firmware         string         `json:"firmware"`
	Container        ContainerProps `json:"container"`
}

// ParseProps decodes and validates VM cloud_properties.
func ParseProps(src cloudprops.Source) (Props, error) {
	var raw rawProps
	if err := cloudprops.Decode(src, &raw, "VM cloud_properties"); err != nil {
		return Props{}, err
	}
	props := Props{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB, SSHPublicKey: raw.SSHPublicKey, Firmware: raw.Firmware, Container: raw.Container}
	if props.Firmware != "" && props.Firmware != FirmwareEFI && props.Firmware != FirmwareBIOS {
		return Props{}, fmt.Errorf("VM cloud_properties: 'firmware' must be '%s' or '%s', got '%s'", FirmwareEFI, FirmwareBIOS, props.Firmware)
	}
	switch props.Container.Init {
	case InitAuto, InitSystemd, InitPlain:
	default:
		return Props{}, fmt.Errorf("VM cloud_properties: 'container.init' is %q; want %q, %q or none (decided from the stemcell)", props.Container.Init, InitSystemd, InitPlain)
	}
	if props.SSHPublicKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(props.SSHPublicKey)); err != nil {
			return Props{}, fmt.Errorf("VM cloud_properties: 'ssh_public_key' is not an SSH public key in authorized_keys form: %v", err)
		}
	}
	pairs := []struct {
		name, alias string
		value, aka  *int
		target      *int
		max         int
	}{
		{"cpus", "cpu", raw.CPUs, raw.CPU, &props.CPUs, MaxCPUs},
		{"memory", "ram", raw.MemoryMiB, raw.RAM, &props.MemoryMiB, MaxMemoryMiB},
		{"ephemeral_disk", "disk", raw.EphemeralDiskMiB, raw.Disk, &props.EphemeralDiskMiB, disk.MaxSizeMiB},
	}
	for _, p := range pairs {
		if p.value != nil && p.aka != nil && *p.value != *p.aka {
			return Props{}, fmt.Errorf("VM cloud_properties: '%s' (%d) and '%s' (%d) disagree", p.name, *p.value, p.alias, *p.aka)
		}
		switch {
		case p.value != nil:
			*p.target = *p.value
		case p.aka != nil:
			*p.target = *p.aka
		}
		if *p.target <= 0 {
			return Props{}, fmt.Errorf("VM cloud_properties: '%s' must be a positive number, got %d", p.name, *p.target)
		}
		if *p.target > p.max {
			return Props{}, fmt.Errorf("VM cloud_properties: '%s' of %d is more than the %d any VM can have", p.name, *p.target, p.max)
		}
	}
	return props, nil
}
