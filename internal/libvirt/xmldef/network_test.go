package xmldef

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

func TestNetworkXMLPerMode(t *testing.T) {
	_, subnet, _ := net.ParseCIDR("10.9.8.0/24")
	cases := []struct {
		plan       network.Plan
		forward    string
		wantIP     bool
		hostBridge string
	}{
		{network.Plan{Name: "n-nat", Mode: network.ModeNAT, Subnet: subnet, Gateway: net.ParseIP("10.9.8.254").To4()}, "nat", true, ""},
		{network.Plan{Name: "n-iso", Mode: network.ModeIsolated, Subnet: subnet, Gateway: net.ParseIP("10.9.8.1").To4(), DHCPFirst: net.ParseIP("10.9.8.100"), DHCPLast: net.ParseIP("10.9.8.120")}, "", true, ""},
		{network.Plan{Name: "n-open", Mode: network.ModeOpen, Subnet: subnet, Gateway: net.ParseIP("10.9.8.1").To4()}, "open", true, ""},
		{network.Plan{Name: "n-br", Mode: network.ModeBridge, HostBridge: "br0"}, "bridge", false, "br0"},
	}
	for _, c := range cases {
		t.Run(c.plan.Name, func(t *testing.T) {
			raw, err := NetworkXML(&c.plan)
			if err != nil {
				t.Fatal(err)
			}
			validateXML(t, "network", raw)
			var doc libvirtxml.Network
			if err := doc.Unmarshal(raw); err != nil {
				t.Fatal(err)
			}
			if !OwnsNetwork(doc) {
				t.Error("no ownership marker")
			}
			if got := ""; doc.Forward != nil {
				got = doc.Forward.Mode
				if got != c.forward {
					t.Errorf("forward mode %q, want %q", got, c.forward)
				}
			} else if c.forward != "" {
				t.Errorf("no forward element, want %q", c.forward)
			}
			if c.wantIP != (len(doc.IPs) == 1) {
				t.Fatalf("ips = %+v", doc.IPs)
			}
			if c.wantIP {
				if doc.IPs[0].Address != c.plan.Gateway.String() || doc.IPs[0].Prefix != 24 {
					t.Errorf("ip = %+v, want the gateway %s/24", doc.IPs[0], c.plan.Gateway)
				}
				if got := len(doc.IPs[0].DHCP.Ranges); (c.plan.DHCPFirst != nil) != (got == 1) {
					t.Errorf("dhcp ranges = %+v", doc.IPs[0].DHCP.Ranges)
				}
			}
			if c.hostBridge != "" && doc.Bridge.Name != c.hostBridge {
				t.Errorf("bridge %q, want %q", doc.Bridge.Name, c.hostBridge)
			}
		})
	}
}

// validateXML checks a document against libvirt's own schema.
func validateXML(t *testing.T, kind, doc string) {
	t.Helper()
	if !schemaAccepts(t, kind, doc) {
		t.Fatalf("libvirt's %s schema rejects:\n%s", kind, doc)
	}
}

// schemaAccepts runs virt-xml-validate on doc; what it says when it
// refuses is logged.
func schemaAccepts(t *testing.T, kind, doc string) bool {
	t.Helper()
	if _, err := exec.LookPath("virt-xml-validate"); err != nil {
		t.Fatal("virt-xml-validate (libvirt-clients) is missing: the test command installs it")
	}
	path := filepath.Join(t.TempDir(), kind+".xml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("virt-xml-validate", path, kind).CombinedOutput()
	if err != nil {
		t.Logf("virt-xml-validate: %s", out)
	}
	return err == nil
}
