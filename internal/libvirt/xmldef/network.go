package xmldef

import (
	"fmt"
	"hash/crc32"
	"net"
	"slices"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

// NetworkMarker marks libvirt networks the CPI made. libvirt 9.0's network
// XML has no <metadata>; a portgroup is kept in the definition on every
// host, local or remote, changes nothing for interfaces that do not name
// it, and survives the loss of store_dir. Only networks carrying it are
// ever changed (DHCP reservations) or removed.
const NetworkMarker = "bosh-libvirt-cpi"

// NetworkXML is the definition of a network planned from a VM's settings.
func NetworkXML(p *network.Plan) (string, error) {
	doc := libvirtxml.Network{
		Name:       p.Name,
		PortGroups: []libvirtxml.NetworkPortGroup{{Name: NetworkMarker}},
	}
	switch p.Mode {
	case network.ModeBridge:
		doc.Forward = &libvirtxml.NetworkForward{Mode: "bridge"}
		doc.Bridge = &libvirtxml.NetworkBridge{Name: p.HostBridge}
		return doc.Marshal()
	case network.ModeNAT:
		doc.Forward = &libvirtxml.NetworkForward{Mode: "nat"}
	case network.ModeOpen:
		doc.Forward = &libvirtxml.NetworkForward{Mode: "open"}
	}
	// Bridge names are at most 15 bytes: a hash of the network name fits.
	doc.Bridge = &libvirtxml.NetworkBridge{Name: fmt.Sprintf("bosh%08x", crc32.ChecksumIEEE([]byte(p.Name))), STP: "on"}
	ones, _ := p.Subnet.Mask.Size()
	dhcp := &libvirtxml.NetworkDHCP{}
	if p.DHCPFirst != nil {
		dhcp.Ranges = []libvirtxml.NetworkDHCPRange{{Start: p.DHCPFirst.String(), End: p.DHCPLast.String()}}
	}
	doc.IPs = []libvirtxml.NetworkIP{{Address: p.Gateway.String(), Prefix: uint(ones), DHCP: dhcp}}
	return doc.Marshal()
}

func NetworkSubnets(doc libvirtxml.Network) []*net.IPNet {
	var out []*net.IPNet
	for _, ip := range doc.IPs {
		addr := net.ParseIP(ip.Address).To4()
		if addr == nil {
			continue
		}
		mask := net.CIDRMask(int(ip.Prefix), 32)
		if ip.Netmask != "" {
			mask = net.IPMask(net.ParseIP(ip.Netmask).To4())
		}
		out = append(out, &net.IPNet{IP: addr.Mask(mask), Mask: mask})
	}
	return out
}

func OwnsNetwork(doc libvirtxml.Network) bool {
	return slices.ContainsFunc(doc.PortGroups, func(g libvirtxml.NetworkPortGroup) bool { return g.Name == NetworkMarker })
}
