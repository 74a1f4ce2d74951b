package libvirt

import (
	"context"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// addressSources are libvirt's ways to learn a NIC's address, in the order
// asked: the libvirt network's DHCP leases, the QEMU guest agent where the
// guest runs one, then the host's ARP table.
var addressSources = []golibvirt.DomainInterfaceAddressesSource{
	golibvirt.DomainInterfaceAddressesSrcLease,
	golibvirt.DomainInterfaceAddressesSrcAgent,
	golibvirt.DomainInterfaceAddressesSrcArp,
}

// NICAddresses maps each NIC's MAC to the first IPv4 address a source
// knows for it. A source that cannot answer (no guest agent channel, a
// NIC on no libvirt network) is skipped; the domain not being ours is
// ErrNotFound.
func (b *Backend) NICAddresses(ctx context.Context, cid string) (map[string]string, error) {
	dom, err := b.lookupOwnedDomain(cid)
	if err != nil {
		return nil, err
	}
	found := map[string]string{}
	for _, source := range addressSources {
		ifaces, err := b.conn.DomainInterfaceAddresses(dom, uint32(source), 0)
		if err != nil {
			b.log.Debug("address source did not answer", "vm_cid", cid, "source", source.String(), "error", err)
			continue
		}
		for mac, ip := range ipv4ByMAC(ifaces) {
			if _, known := found[mac]; !known {
				found[mac] = ip
			}
		}
	}
	return found, nil
}

func ipv4ByMAC(ifaces []golibvirt.DomainInterface) map[string]string {
	out := map[string]string{}
	for _, iface := range ifaces {
		if len(iface.Hwaddr) == 0 {
			continue
		}
		mac := strings.ToLower(iface.Hwaddr[0])
		for _, a := range iface.Addrs {
			if a.Type == int32(golibvirt.IPAddrTypeIpv4) && a.Addr != "" {
				out[mac] = a.Addr
				break
			}
		}
	}
	return out
}
