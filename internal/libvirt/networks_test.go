package libvirt

import (
	"testing"
)

func TestHostRoutes(t *testing.T) {
	table := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"virbr0\t007AA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	routes := hostRoutes(table)
	if len(routes) != 1 || routes[0].dev != "virbr0" || routes[0].subnet.String() != "192.168.122.0/24" {
		t.Fatalf("routes = %+v; want only virbr0 192.168.122.0/24 (the default route left out)", routes)
	}
}
