package network

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPlanFor(t *testing.T) {
	cases := []struct {
		name                   string
		props                  Props
		ip, netmask, gateway   string
		wantNil                bool
		subnet, gw, first, err string
	}{
		{name: "no mode: must exist", props: Props{Name: "n"}, ip: "10.0.0.5", netmask: "255.255.255.0", gateway: "10.0.0.1", wantNil: true},
		{name: "user mode creates nothing", props: Props{Name: "n", Mode: ModeUser}, wantNil: true},
		{name: "nat /24", props: Props{Name: "n", Mode: ModeNAT}, ip: "10.9.8.7", netmask: "255.255.255.0", gateway: "10.9.8.1", subnet: "10.9.8.0/24", gw: "10.9.8.1"},
		{name: "gateway is not always .1", props: Props{Name: "n", Mode: ModeIsolated}, ip: "10.9.8.7", netmask: "255.255.254.0", gateway: "10.9.9.254", subnet: "10.9.8.0/23", gw: "10.9.9.254"},
		{name: "dhcp range only when asked", props: Props{Name: "n", Mode: ModeNAT, DHCPRange: "10.9.8.100-10.9.8.150"}, ip: "10.9.8.7", netmask: "255.255.255.0", gateway: "10.9.8.1", subnet: "10.9.8.0/24", gw: "10.9.8.1", first: "10.9.8.100"},
		{name: "bridge needs no subnet", props: Props{Name: "n", Mode: ModeBridge, Bridge: "br0"}},
		{name: "bridge without a bridge", props: Props{Name: "n", Mode: ModeBridge}, err: "must name the host bridge"},
		{name: "dynamic network cannot imply a subnet", props: Props{Name: "n", Mode: ModeNAT}, err: "needs a manual network's ip"},
		{name: "gateway outside", props: Props{Name: "n", Mode: ModeNAT}, ip: "10.9.8.7", netmask: "255.255.255.0", gateway: "10.9.9.1", err: "not a host address"},
		{name: "bad netmask", props: Props{Name: "n", Mode: ModeNAT}, ip: "10.9.8.7", netmask: "255.0.255.0", gateway: "10.9.8.1", err: "not a contiguous netmask"},
		{name: "bad ip", props: Props{Name: "n", Mode: ModeNAT}, ip: "999.1.1.1", netmask: "255.255.255.0", gateway: "10.9.8.1", err: "not an IPv4 address"},
		{name: "range outside", props: Props{Name: "n", Mode: ModeNAT, DHCPRange: "10.9.8.200-10.9.9.10"}, ip: "10.9.8.7", netmask: "255.255.255.0", gateway: "10.9.8.1", err: "inside 10.9.8.0/24"},
		{name: "range backwards", props: Props{Name: "n", Mode: ModeNAT, DHCPRange: "10.9.8.200-10.9.8.100"}, ip: "10.9.8.7", netmask: "255.255.255.0", gateway: "10.9.8.1", err: "ascending"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := PlanFor(c.props, "private", c.ip, c.netmask, c.gateway)
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "private") {
					t.Fatalf("err = %v; want one naming the network and saying %q", err, c.err)
				}
			case err != nil:
				t.Fatal(err)
			case c.wantNil != (p == nil):
				t.Fatalf("plan = %+v; want nil %v", p, c.wantNil)
			case p != nil && c.subnet != "" && (p.Subnet.String() != c.subnet || p.Gateway.String() != c.gw):
				t.Fatalf("plan subnet %s gateway %s; want %s %s", p.Subnet, p.Gateway, c.subnet, c.gw)
			case p != nil && c.first != "" && p.DHCPFirst.String() != c.first:
				t.Fatalf("dhcp first %s; want %s", p.DHCPFirst, c.first)
			case p != nil && c.first == "" && p.DHCPFirst != nil:
				t.Fatalf("a DHCP range nobody asked for: %s", p.DHCPFirst)
			}
		})
	}
}

func TestParsePropsModes(t *testing.T) {
	for mode, ok := range map[string]bool{"": true, "user": true, "nat": true, "isolated": true, "open": true, "bridge": true, "route": false, "NAT": false} {
		props := mapSource{"name": "n", "mode": mode}
		if mode == "bridge" {
			props["bridge"] = "br0"
		}
		_, err := ParseProps(props, "private")
		if (err == nil) != ok {
			t.Errorf("mode %q: err = %v; want ok %v", mode, err, ok)
		}
	}
}

// mapSource is cloud_properties as the director sends them.
type mapSource map[string]any

func (m mapSource) As(out any) error { raw, _ := json.Marshal(m); return json.Unmarshal(raw, out) }

func (m mapSource) MarshalJSON() ([]byte, error) { return json.Marshal(map[string]any(m)) }

func TestParsePropsRefusesKeysOfOtherModes(t *testing.T) {
	for _, props := range []mapSource{{"bridge": "br0"}, {"mode": "nat", "bridge": "br0"}, {"dhcp_range": "10.0.0.2-10.0.0.9"}, {"mode": "user", "dhcp_range": "10.0.0.2-10.0.0.9"}} {
		if _, err := ParseProps(props, "private"); err == nil || !strings.Contains(err.Error(), "only used") {
			t.Errorf("%v: err = %v; want a refusal", props, err)
		}
	}
}
