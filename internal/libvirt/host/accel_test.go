package host

import (
	"os"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// caps-kvm-without-vmx.xml is `virsh capabilities` recorded on a machine of
// this project's CI kind: a paravirtual /dev/kvm (kvm-pvm), so libvirt offers
// domain type kvm while the host CPU lists neither vmx nor svm. The other
// hosts are that recording with the one thing that differs changed.
func recordedCaps(t *testing.T, edit func(string) string) libvirtxml.Caps {
	t.Helper()
	raw, err := os.ReadFile("testdata/caps-kvm-without-vmx.xml")
	if err != nil {
		t.Fatal(err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(edit(string(raw))); err != nil {
		t.Fatal(err)
	}
	return caps
}

func asRecorded(s string) string { return s }

func withCPUFeature(name string) func(string) string {
	return func(s string) string {
		return strings.Replace(s, "<feature name='vme'/>", "<feature name='vme'/>\n      <feature name='"+name+"'/>", 1)
	}
}

func withoutKVMDomains(s string) string { return strings.ReplaceAll(s, "<domain type='kvm'/>", "") }

func TestDecideDomainType(t *testing.T) {
	cases := []struct {
		name, hypervisor string
		edit             func(string) string
		want             string
		broken           bool
		reason           string
	}{
		{"auto, paravirtual kvm without vmx/svm", "auto", asRecorded, "qemu", true, "neither vmx nor svm"},
		{"auto, AMD host with svm", "auto", withCPUFeature("svm"), "kvm", false, "has svm"},
		{"auto, Intel host with vmx", "auto", withCPUFeature("vmx"), "kvm", false, "has vmx"},
		{"auto, no kvm offered though the CPU has vmx", "auto", func(s string) string { return withoutKVMDomains(withCPUFeature("vmx")(s)) }, "qemu", false, "offers no domain type kvm"},
		{"qemu asked for on a kvm host", "qemu", withCPUFeature("vmx"), "qemu", false, "'qemu' in the config"},
		{"kvm asked for on a host that cannot", "kvm", asRecorded, "kvm", true, "neither vmx nor svm"},
		{"kvm asked for on a kvm host", "kvm", withCPUFeature("svm"), "kvm", false, "'kvm' in the config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := DecideDomainType(c.hypervisor, recordedCaps(t, c.edit))
			if got.DomainType != c.want || got.Broken != c.broken || !strings.Contains(got.Reason, c.reason) {
				t.Errorf("got %+v, want type %s broken %v reason containing %q", got, c.want, c.broken, c.reason)
			}
		})
	}
}
