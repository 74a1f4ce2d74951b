package network

import (
	"bytes"
	"fmt"
	"net"
	"strings"
)

// Modes a network's cloud_properties may ask for. With one of the created
// modes the CPI makes the libvirt network when it is missing; without a
// mode the network must exist.
const (
	ModeNAT      = "nat"      // NAT to the host's uplink, DHCP and DNS by libvirt
	ModeIsolated = "isolated" // no forwarding: guests and host only
	ModeOpen     = "open"     // routed without NAT or firewall rules
	ModeBridge   = "bridge"   // a host bridge the admin made (Props.Bridge)
)

var createdModes = map[string]bool{ModeNAT: true, ModeIsolated: true, ModeOpen: true, ModeBridge: true}

// Plan is a libvirt network to create from what a VM's settings imply.
type Plan struct {
	Name, Mode string
	// HostBridge is the existing bridge of mode bridge.
	HostBridge string
	// Subnet and Gateway come from the manual network's ip, netmask and
	// gateway; empty for mode bridge, whose addressing is the host's.
	Subnet  *net.IPNet
	Gateway net.IP
	// DHCPFirst/DHCPLast is the dynamic range, only when asked for: the CPI
	// does not know the director's static range, so by default DHCP serves
	// only the reservations of the VMs.
	DHCPFirst, DHCPLast net.IP
}

// PlanFor returns the network to create for props, or nil when props ask
// for none. ip, netmask and gateway are the BOSH network's (empty for a
// dynamic network, which cannot imply a subnet).
func PlanFor(props Props, boshName, ip, netmask, gateway string) (*Plan, error) {
	if !createdModes[props.Mode] {
		return nil, nil
	}
	where := fmt.Sprintf("network '%s' (mode %s)", boshName, props.Mode)
	p := &Plan{Name: props.Name, Mode: props.Mode, HostBridge: props.Bridge}
	if props.Mode == ModeBridge {
		if props.Bridge == "" {
			return nil, fmt.Errorf("%s: cloud_properties.bridge must name the host bridge", where)
		}
		return p, nil
	}
	if ip == "" || netmask == "" || gateway == "" {
		return nil, fmt.Errorf("%s: creating the libvirt network needs a manual network's ip, netmask and gateway to derive its subnet", where)
	}
	subnet, err := subnetOf(ip, netmask)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	gw := gatewayIn(subnet, gateway)
	if gw == nil || gw.Equal(subnet.IP) {
		return nil, fmt.Errorf("%s: gateway '%s' is not a host address of %s", where, gateway, subnet)
	}
	p.Subnet, p.Gateway = subnet, gw
	if props.DHCPRange != "" {
		if p.DHCPFirst, p.DHCPLast, err = parseRange(props.DHCPRange, subnet); err != nil {
			return nil, fmt.Errorf("%s: dhcp_range: %w", where, err)
		}
	}
	return p, nil
}

func subnetOf(ip, netmask string) (*net.IPNet, error) {
	addr := net.ParseIP(ip).To4()
	if addr == nil {
		return nil, fmt.Errorf("ip '%s' is not an IPv4 address", ip)
	}
	maskIP := net.ParseIP(netmask).To4()
	if maskIP == nil {
		return nil, fmt.Errorf("netmask '%s' is not an IPv4 netmask", netmask)
	}
	mask := net.IPMask(maskIP)
	if ones, bits := mask.Size(); bits == 0 || ones == 0 || ones > 30 {
		return nil, fmt.Errorf("netmask '%s' is not a contiguous netmask of a /1 to /30", netmask)
	}
	return &net.IPNet{IP: addr.Mask(mask), Mask: mask}, nil
}

func parseRange(r string, subnet *net.IPNet) (net.IP, net.IP, error) {
	a, b, ok := strings.Cut(r, "-")
	first, last := net.ParseIP(strings.TrimSpace(a)).To4(), net.ParseIP(strings.TrimSpace(b)).To4()
	if !ok || first == nil || last == nil {
		return nil, nil, fmt.Errorf("'%s' is not <first IP>-<last IP>", r)
	}
	if !subnet.Contains(first) || !subnet.Contains(last) || bytes.Compare(first, last) > 0 {
		return nil, nil, fmt.Errorf("'%s' is not an ascending range inside %s", r, subnet)
	}
	return first, last, nil
}

// Overlaps tells whether two subnets share an address.
func Overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// CheckManual refuses addresses the agent could not configure: an ip or
// netmask that does not parse, and a gateway outside the ip's subnet.
func CheckManual(boshName, ip, netmask, gateway string) error {
	subnet, err := subnetOf(ip, netmask)
	if err != nil {
		return fmt.Errorf("network '%s': %w", boshName, err)
	}
	if gateway == "" {
		return nil
	}
	if gatewayIn(subnet, gateway) == nil {
		return fmt.Errorf("network '%s': gateway '%s' is not inside %s, the subnet of ip %s", boshName, gateway, subnet, ip)
	}
	return nil
}

// gatewayIn is gateway as an IPv4 address inside subnet, or nil.
func gatewayIn(subnet *net.IPNet, gateway string) net.IP {
	gw := net.ParseIP(gateway).To4()
	if gw == nil || !subnet.Contains(gw) {
		return nil
	}
	return gw
}
