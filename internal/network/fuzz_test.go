package network

import (
	"net"
	"testing"
)

// FuzzCheckManual: any manual network settings are accepted or refused,
// never a panic; accepted ones have an IPv4 ip and netmask that parse and
// a gateway inside the ip's subnet.
func FuzzCheckManual(f *testing.F) {
	f.Add("10.0.0.10", "255.255.255.0", "10.0.0.1")
	f.Add("999.1.1.1", "255.255.255.0", "10.0.0.1")
	f.Add("10.0.1.10", "24", "10.0.0.1")
	f.Add("fd00::10", "ffff:ffff:ffff:ffff::", "fd00::1")
	f.Add("10.0.0.1", "255.0.255.0", "")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, ip, netmask, gateway string) {
		if CheckManual("n", ip, netmask, gateway) != nil {
			return
		}
		addr, mask := net.ParseIP(ip).To4(), net.ParseIP(netmask).To4()
		if addr == nil || mask == nil {
			t.Fatalf("accepted ip %q netmask %q that do not parse", ip, netmask)
		}
		if gateway == "" {
			return
		}
		subnet := net.IPNet{IP: addr.Mask(net.IPMask(mask)), Mask: net.IPMask(mask)}
		if !subnet.Contains(net.ParseIP(gateway)) {
			t.Fatalf("accepted gateway %q outside %s", gateway, subnet.String())
		}
	})
}
