package host

import (
	"fmt"
	"slices"

	"libvirt.org/go/libvirtxml"
)

// DomainTypeDecision is the domain type create_vm uses on the connected host and
// why, so the log and doctor can say it in words.
type DomainTypeDecision struct {
	DomainType string // "kvm" or "qemu"
	Reason     string
	// Broken is set when the host offers domain type kvm that cannot run
	// guests (no vmx/svm): a kvm domain there pauses with a KVM internal error.
	Broken bool
}

// DecideDomainType applies the rule virt-host-validate uses to the host the
// CPI is CONNECTED to (never to the machine the CPI runs on, which inside a
// director is a VM): kvm only when that host's capabilities offer domain type
// kvm AND its CPU has hardware virtualization (vmx or svm). A paravirtual
// /dev/kvm without VT-x/AMD-V offers kvm but cannot run guests.
func DecideDomainType(hypervisor string, caps libvirtxml.Caps) DomainTypeDecision {
	offered := offersDomainType(caps, "kvm")
	hw := hasHardwareVirt(caps)
	switch hypervisor {
	case "qemu":
		return DomainTypeDecision{"qemu", "hypervisor is 'qemu' in the config: QEMU TCG (software emulation)", false}
	case "kvm":
		reason := "hypervisor is 'kvm' in the config"
		if !offered || !hw {
			reason += "; " + kvmMissing(offered, hw)
		}
		return DomainTypeDecision{"kvm", reason, offered && !hw}
	}
	if offered && hw {
		return DomainTypeDecision{"kvm", fmt.Sprintf("hypervisor 'auto': the host offers domain type kvm and its CPU has %s", hwFeature(caps)), false}
	}
	return DomainTypeDecision{"qemu", "hypervisor 'auto': " + kvmMissing(offered, hw) + ", so QEMU TCG (software emulation, slower) is used", offered && !hw}
}

func kvmMissing(offered, hw bool) string {
	switch {
	case !offered:
		return "the host's libvirt offers no domain type kvm (no /dev/kvm, or QEMU lacks KVM support there)"
	case !hw:
		return "the host offers domain type kvm but its CPU lists neither vmx nor svm (a paravirtual /dev/kvm without VT-x/AMD-V: kvm guests would pause with a KVM internal error)"
	}
	return ""
}

// offersDomainType tells whether the host runs x86_64 hvm guests of type t.
func offersDomainType(caps libvirtxml.Caps, t string) bool {
	for _, guest := range caps.Guests {
		if guest.OSType == "hvm" && guest.Arch.Name == "x86_64" &&
			slices.ContainsFunc(guest.Arch.Domains, func(d libvirtxml.CapsGuestDomain) bool { return d.Type == t }) {
			return true
		}
	}
	return false
}

func hasHardwareVirt(caps libvirtxml.Caps) bool { return hwFeature(caps) != "" }

// hwFeature names the host CPU's hardware virtualization feature, if any.
func hwFeature(caps libvirtxml.Caps) string {
	if caps.Host.CPU == nil {
		return ""
	}
	for _, f := range caps.Host.CPU.FeatureFlags {
		if f.Name == "vmx" || f.Name == "svm" {
			return f.Name
		}
	}
	return ""
}
