package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// fullSettings is a settings document as the CPI writes it for API v2
// stemcells: every field the agent knows, hints in both forms.
const fullSettings = `{
  "agent_id": "agent-1",
  "vm": {"name": "vm-1", "id": "vm-1"},
  "mbus": "https://mbus:secret@0.0.0.0:6868",
  "ntp": ["0.pool.ntp.org"],
  "blobstore": {"provider": "local", "options": {"blobstore_path": "/var/vcap/micro_bosh/data/cache"}},
  "env": {"bosh": {"password": "x"}},
  "networks": {
    "private": {"type": "manual", "ip": "10.0.0.5", "netmask": "255.255.255.0", "gateway": "10.0.0.1",
                "dns": ["10.0.0.2"], "default": ["dns", "gateway"], "mac": "52:54:00:AA:BB:01",
                "preconfigured": false, "use_dhcp": false, "cloud_properties": {}},
    "dhcp": {"type": "dynamic", "dns": [], "default": [], "mac": "52:54:00:aa:bb:02", "use_dhcp": true},
    "public": {"type": "vip", "ip": "203.0.113.9", "mac": ""}
  },
  "disks": {
    "system": "/dev/vda",
    "ephemeral": {"id": "a308325b79a02d90c3b7", "path": "/dev/vdb"},
    "persistent": {"disk-b": {"id": "dc86ab4cf5c13b2038e3", "path": "/dev/vdc"}, "disk-a": "/dev/sdd"}
  }
}`

func TestParseSettings(t *testing.T) {
	s, err := parseSettings([]byte(fullSettings))
	if err != nil {
		t.Fatal(err)
	}
	if s.AgentID != "agent-1" || s.VMName != "vm-1" || s.SystemDisk != "vda" {
		t.Errorf("identity: %+v", s)
	}
	if s.Ephemeral == nil || *s.Ephemeral != (guestcheck.Hint{ID: "a308325b79a02d90c3b7", Path: "/dev/vdb"}) {
		t.Errorf("ephemeral hint %+v", s.Ephemeral)
	}
	wantPersistent := map[string]guestcheck.Hint{
		"disk-b": {ID: "dc86ab4cf5c13b2038e3", Path: "/dev/vdc"},
		"disk-a": {Path: "/dev/sdd"},
	}
	if !reflect.DeepEqual(s.Persistent, wantPersistent) {
		t.Errorf("persistent hints %+v; want %+v", s.Persistent, wantPersistent)
	}
	if got := s.persistentCIDs(); !reflect.DeepEqual(got, []string{"disk-a", "disk-b"}) {
		t.Errorf("persistent CIDs %v", got)
	}
	if got := s.networkNames(); !reflect.DeepEqual(got, []string{"dhcp", "private", "public"}) {
		t.Errorf("networks %v", got)
	}
	if n := s.Networks["private"]; n.IP != "10.0.0.5" || !n.isDefaultGateway() || n.usesDHCP() {
		t.Errorf("manual network %+v", n)
	}
}

func TestParseSettingsRejects(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"not JSON", `{`, "decoding"},
		{"no agent id", `{"vm": {"name": "x"}}`, "agent_id"},
		{"bad persistent hint", `{"agent_id": "a", "disks": {"persistent": {"d": 7}}}`, "persistent disk d"},
		{"bad ephemeral hint", `{"agent_id": "a", "disks": {"ephemeral": true}}`, "ephemeral"},
	}
	for _, tc := range cases {
		if _, err := parseSettings([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v; want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestParseSettingsMinimal(t *testing.T) {
	s, err := parseSettings([]byte(`{"agent_id": "a", "disks": {"ephemeral": null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.SystemDisk != "vda" || s.Ephemeral != nil || len(s.Persistent) != 0 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestUsesDHCP(t *testing.T) {
	cases := []struct {
		n    network
		want bool
	}{
		{network{Type: "dynamic"}, true},
		{network{Type: "manual", IP: "10.0.0.5", Netmask: "255.255.255.0"}, false},
		{network{Type: "manual", IP: "10.0.0.5", Netmask: "255.255.255.0", UseDHCP: true}, true},
		{network{Type: "manual"}, true}, // no address given: the agent asks DHCP
		{network{Type: "vip"}, false},
	}
	for _, tc := range cases {
		if got := tc.n.usesDHCP(); got != tc.want {
			t.Errorf("%+v usesDHCP = %t; want %t", tc.n, got, tc.want)
		}
	}
}

func TestPrefixLength(t *testing.T) {
	cases := []struct {
		mask    string
		want    int
		wantErr bool
	}{
		{"255.255.255.0", 24, false},
		{"255.255.252.0", 22, false},
		{"255.255.255.255", 32, false},
		{"0.0.0.0", 0, false},
		{"255.0.255.0", 0, true},
		{"ffff::", 0, true},
		{"", 0, true},
	}
	for _, tc := range cases {
		got, err := prefixLength(tc.mask)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("prefixLength(%q) = %d, %v; want %d, error %t", tc.mask, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestMatchNICs(t *testing.T) {
	s, err := parseSettings([]byte(fullSettings))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		macs     map[string]string
		wantNICs map[string]string // network -> NIC
		wantErrs []string
	}{
		{"every MAC present, case-insensitive", map[string]string{"52:54:00:aa:bb:01": "eth0", "52:54:00:aa:bb:02": "eth1"},
			map[string]string{"private": "eth0", "dhcp": "eth1"}, nil},
		{"NIC order does not matter", map[string]string{"52:54:00:aa:bb:01": "eth1", "52:54:00:aa:bb:02": "eth0"},
			map[string]string{"private": "eth1", "dhcp": "eth0"}, nil},
		{"a MAC the domain does not have", map[string]string{"52:54:00:aa:bb:01": "eth0", "52:54:00:ff:ff:ff": "eth1"},
			map[string]string{"private": "eth0"}, []string{"network dhcp: no NIC has MAC 52:54:00:aa:bb:02"}},
		{"no NICs", map[string]string{}, map[string]string{},
			[]string{"network dhcp: no NIC has MAC 52:54:00:aa:bb:02", "network private: no NIC has MAC 52:54:00:aa:bb:01"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plans, errs := matchNICs(s.Networks, tc.macs)
			got := map[string]string{}
			for _, p := range plans {
				got[p.Network] = p.NIC
			}
			if !reflect.DeepEqual(got, tc.wantNICs) {
				t.Errorf("NICs %v; want %v", got, tc.wantNICs)
			}
			var gotErrs []string
			for _, e := range errs {
				gotErrs = append(gotErrs, e.Error())
			}
			if !reflect.DeepEqual(gotErrs, tc.wantErrs) {
				t.Errorf("errors %q; want %q", gotErrs, tc.wantErrs)
			}
		})
	}
}

func TestMatchNICsNeedsAMAC(t *testing.T) {
	_, errs := matchNICs(map[string]network{"n": {Type: "manual", IP: "10.0.0.5"}}, map[string]string{"52:54:00:00:00:01": "eth0"})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no mac") {
		t.Errorf("errors %v; want one saying the network has no mac", errs)
	}
}
