package network

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPlanManaged(t *testing.T) {
	cases := []struct {
		name                      string
		def                       Definition
		netName, mode, subnet, gw string
		reserved, err             string
	}{
		{name: "range and gateway from the manifest", def: Definition{Type: "manual", Range: "10.7.1.0/24", Gateway: "10.7.1.254", CloudProperties: json.RawMessage(`{"name":"lab"}`)},
			netName: "lab", mode: ModeNAT, subnet: "10.7.1.0/24", gw: "10.7.1.254"},
		{name: "named after its subnet, gateway .1 by default", def: Definition{Type: "manual", Range: "10.7.2.0/23"},
			netName: "bosh-10-7-2-0-23", mode: ModeNAT, subnet: "10.7.2.0/23", gw: "10.7.2.1"},
		{name: "isolated with a DHCP range the director must not use", def: Definition{Range: "10.7.3.0/24", CloudProperties: json.RawMessage(`{"mode":"isolated","dhcp_range":"10.7.3.200-10.7.3.250"}`)},
			netName: "bosh-10-7-3-0-24", mode: ModeIsolated, subnet: "10.7.3.0/24", gw: "10.7.3.1", reserved: "10.7.3.200 - 10.7.3.250"},
		{name: "bridge", def: Definition{Range: "192.0.2.0/24", Gateway: "192.0.2.1", CloudProperties: json.RawMessage(`{"name":"br","mode":"bridge","bridge":"br0"}`)},
			netName: "br", mode: ModeBridge, gw: "192.0.2.1"},
		{name: "dynamic type", def: Definition{Type: "dynamic", Range: "10.7.4.0/24"}, err: "managed networks are manual"},
		{name: "no range", def: Definition{NetmaskBits: 24}, err: "has no range"},
		{name: "not a CIDR", def: Definition{Range: "10.7.5.0"}, err: "not an IPv4 CIDR"},
		{name: "too small", def: Definition{Range: "10.7.5.0/31"}, err: "/1 to /30"},
		{name: "gateway outside", def: Definition{Range: "10.7.6.0/24", Gateway: "10.7.7.1"}, err: "not a host address"},
		{name: "user mode", def: Definition{Range: "10.7.6.0/24", CloudProperties: json.RawMessage(`{"mode":"user"}`)}, err: "mode user"},
		{name: "unknown key", def: Definition{Range: "10.7.6.0/24", CloudProperties: json.RawMessage(`{"nmae":"x"}`)}, err: "nmae"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := PlanManaged(c.def)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v; want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Plan.Name != c.netName || m.Plan.Mode != c.mode || m.CloudProperties["name"] != c.netName || len(m.CloudProperties) != 1 {
				t.Fatalf("plan %s/%s, cloud_properties %v; want %s/%s and only the name", m.Plan.Name, m.Plan.Mode, m.CloudProperties, c.netName, c.mode)
			}
			if c.subnet != "" && (m.Plan.Subnet.String() != c.subnet || m.Plan.Gateway.String() != c.gw) {
				t.Fatalf("subnet %v gateway %v; want %s %s", m.Plan.Subnet, m.Plan.Gateway, c.subnet, c.gw)
			}
			if m.Addresses.Gateway != c.gw || m.Addresses.Range != c.def.Range {
				t.Fatalf("addresses %+v; want range %s gateway %s", m.Addresses, c.def.Range, c.gw)
			}
			if got := strings.Join(m.Addresses.Reserved, ","); got != c.reserved {
				t.Fatalf("reserved %q; want %q", got, c.reserved)
			}
		})
	}
}
