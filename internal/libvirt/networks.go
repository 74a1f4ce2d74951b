package libvirt

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/xmldef"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// createNetwork defines, starts and autostarts the planned network unless
// it exists by then. Parallel create_vm calls make one network: creation
// is under a lock and looks again inside it.
func (b *Backend) createNetwork(ctx context.Context, nic vm.NIC) error {
	p := nic.Create
	unlock, err := b.locks.Lock(ctx, networkLock(p.Name))
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := b.conn.NetworkLookupByName(p.Name); err == nil {
		return nil
	}
	return b.defineNetwork(p, fmt.Sprintf("for BOSH network '%s'", nic.BOSHNetwork))
}

func networkLock(name string) string { return "network-" + name }

// CreateNetwork makes the libvirt network of a managed subnet
// (create_network). It is idempotent: a network of ours by that name with
// the planned subnet is started if a killed call left it inactive and
// answered as made; one that is not ours, or ours with another subnet, is
// refused and left as it is.
func (b *Backend) CreateNetwork(ctx context.Context, p *network.Plan) error {
	unlock, err := b.locks.Lock(ctx, networkLock(p.Name))
	if err != nil {
		return err
	}
	defer unlock()
	netw, err := b.conn.NetworkLookupByName(p.Name)
	if host.IsCode(err, golibvirt.ErrNoNetwork) {
		return b.defineNetwork(p, "for a managed network")
	}
	if err != nil {
		return fmt.Errorf("looking up libvirt network '%s': %w", p.Name, host.Classify(err))
	}
	doc, err := b.networkDoc(netw)
	if err != nil {
		return fmt.Errorf("reading libvirt network '%s': %w", p.Name, host.Classify(err))
	}
	if !xmldef.OwnsNetwork(doc) {
		return fmt.Errorf("libvirt network '%s' exists and was not made by this CPI, so it is left alone: name another in cloud_properties.name, or use it as an unmanaged network (cloud_properties name without mode)", p.Name)
	}
	if p.Subnet != nil {
		subnets := xmldef.NetworkSubnets(doc)
		if len(subnets) != 1 || subnets[0].String() != p.Subnet.String() {
			return fmt.Errorf("libvirt network '%s' of this CPI has subnet %v, not %s: name the managed subnet's network another way (cloud_properties.name)", p.Name, subnets, p.Subnet)
		}
	}
	return b.startNetwork(netw)
}

// defineNetwork defines, starts and autostarts p. Killed between define and
// start, it leaves an inactive network of ours that the next call starts.
func (b *Backend) defineNetwork(p *network.Plan, forWhat string) error {
	if p.Subnet != nil {
		if err := b.refuseOverlaps(p); err != nil {
			return err
		}
	}
	doc, err := xmldef.NetworkXML(p)
	if err != nil {
		return fmt.Errorf("building XML for libvirt network '%s': %w", p.Name, err)
	}
	netw, err := b.conn.NetworkDefineXML(doc)
	if err != nil {
		return fmt.Errorf("defining libvirt network '%s' (%s): %w", p.Name, forWhat, host.Classify(err))
	}
	// Another create_vm may find the defined network inactive and start it
	// first: "already active" is success.
	if err := b.conn.NetworkCreate(netw); err != nil && !host.IsCode(err, golibvirt.ErrOperationInvalid) {
		if undefErr := b.conn.NetworkUndefine(netw); undefErr != nil {
			b.log.Warn("could not undefine the network it failed to start", "network", p.Name, "error", undefErr)
		}
		return fmt.Errorf("starting new libvirt network '%s': %w", p.Name, host.Classify(err))
	}
	if err := b.conn.NetworkSetAutostart(netw, 1); err != nil {
		b.log.Warn("could not mark libvirt network autostart", "network", p.Name, "error", err)
	}
	b.log.Info("created libvirt network", "network", p.Name, "mode", p.Mode, "subnet", fmt.Sprint(p.Subnet), "gateway", fmt.Sprint(p.Gateway))
	return nil
}

// startNetwork starts an inactive network of ours and marks it autostart.
func (b *Backend) startNetwork(netw golibvirt.Network) error {
	started, err := b.activateNetwork(netw)
	if err != nil || !started {
		return err
	}
	if err := b.conn.NetworkSetAutostart(netw, 1); err != nil {
		b.log.Warn("could not mark libvirt network autostart", "network", netw.Name, "error", err)
	}
	return nil
}

// activateNetwork starts netw unless it runs, and says whether this call
// started it. Parallel calls may all try; the losers see "already active",
// which is success.
func (b *Backend) activateNetwork(netw golibvirt.Network) (bool, error) {
	active, err := b.conn.NetworkIsActive(netw)
	if err != nil {
		return false, fmt.Errorf("checking libvirt network '%s': %w", netw.Name, host.Classify(err))
	}
	if active == 1 {
		return false, nil
	}
	if err := b.conn.NetworkCreate(netw); err != nil && !host.IsCode(err, golibvirt.ErrOperationInvalid) {
		return false, fmt.Errorf("starting inactive libvirt network '%s': %w", netw.Name, host.Classify(err))
	}
	b.log.Info("started libvirt network", "network", netw.Name)
	return true, nil
}

// DeleteNetwork removes a libvirt network the CPI made (delete_network).
// ErrNotFound when it is not there; refused, and left as it is, when it is
// not ours or a domain (ours or not) still has a NIC on it.
func (b *Backend) DeleteNetwork(ctx context.Context, name string) error {
	unlock, err := b.locks.Lock(ctx, networkLock(name))
	if err != nil {
		return err
	}
	defer unlock()
	netw, err := b.conn.NetworkLookupByName(name)
	if host.IsCode(err, golibvirt.ErrNoNetwork) {
		return fmt.Errorf("libvirt network '%s': %w", name, cpierr.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("looking up libvirt network '%s': %w", name, host.Classify(err))
	}
	doc, err := b.networkDoc(netw)
	if err != nil {
		return fmt.Errorf("reading libvirt network '%s': %w", name, host.Classify(err))
	}
	if !xmldef.OwnsNetwork(doc) {
		return fmt.Errorf("libvirt network '%s' was not made by this CPI, so it is left alone", name)
	}
	users, err := b.domainsOnNetwork(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("libvirt network '%s' is used by domains %s: %w", name, strings.Join(users, ", "), cpierr.ErrInUse)
	}
	// Killed after destroy, the next call finds it inactive and undefines it.
	if active, _ := b.conn.NetworkIsActive(netw); active == 1 {
		if err := b.conn.NetworkDestroy(netw); err != nil && !host.IsCode(err, golibvirt.ErrOperationInvalid) {
			return fmt.Errorf("stopping libvirt network '%s': %w", name, host.Classify(err))
		}
	}
	if err := b.conn.NetworkUndefine(netw); err != nil && !host.IsCode(err, golibvirt.ErrNoNetwork) {
		return fmt.Errorf("undefining libvirt network '%s': %w", name, host.Classify(err))
	}
	b.log.Info("deleted libvirt network", "network", name)
	return nil
}

// domainsOnNetwork names every domain, running or defined, with a NIC on
// the network (live or next-boot definition).
func (b *Backend) domainsOnNetwork(name string) ([]string, error) {
	all, _, err := b.conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("listing domains: %w", host.Classify(err))
	}
	var users []string
	for _, dom := range all {
		for _, flags := range []golibvirt.DomainXMLFlags{0, golibvirt.DomainXMLInactive} {
			def, err := b.domainDefinition(dom, flags)
			if cpierr.IsNotFound(err) {
				break // gone while we looked
			}
			if err != nil {
				return nil, err
			}
			if usesNetwork(def, name) {
				users = append(users, dom.Name)
				break
			}
		}
	}
	return users, nil
}

func usesNetwork(def *libvirtxml.Domain, name string) bool {
	if def.Devices == nil {
		return false
	}
	for _, iface := range def.Devices.Interfaces {
		if iface.Source != nil && iface.Source.Network != nil && iface.Source.Network.Network == name {
			return true
		}
	}
	return false
}

// refuseOverlaps names the libvirt network or host route a new subnet
// would collide with.
func (b *Backend) refuseOverlaps(p *network.Plan) error {
	taken, err := b.takenSubnets()
	if err != nil {
		return err
	}
	for _, t := range taken {
		if network.Overlaps(p.Subnet, t.subnet) {
			return fmt.Errorf("cannot create libvirt network '%s' with %s: it overlaps %s (%s)", p.Name, p.Subnet, t.holder, t.subnet)
		}
	}
	return nil
}

// takenSubnet is a subnet in use on the host and what uses it.
type takenSubnet struct {
	holder string // "libvirt network 'x'" or "the host route on eth0"
	subnet *net.IPNet
}

// takenSubnets are the subnets of every libvirt network and, for a local
// libvirtd, of the host's routes; a remote libvirtd refuses to start a
// network that collides with its routes by itself.
func (b *Backend) takenSubnets() ([]takenSubnet, error) {
	nets, _, err := b.conn.ConnectListAllNetworks(1, 0)
	if err != nil {
		return nil, fmt.Errorf("listing libvirt networks: %w", host.Classify(err))
	}
	var taken []takenSubnet
	for _, other := range nets {
		doc, err := b.networkDoc(other)
		if err != nil {
			continue
		}
		for _, s := range xmldef.NetworkSubnets(doc) {
			taken = append(taken, takenSubnet{fmt.Sprintf("libvirt network '%s'", other.Name), s})
		}
	}
	if !host.IsLocal(b.cfg.URI) {
		return taken, nil
	}
	routes, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return taken, nil
	}
	for _, r := range hostRoutes(string(routes)) {
		taken = append(taken, takenSubnet{"the host route on " + r.dev, r.subnet})
	}
	return taken, nil
}

// ownSubnet is the one subnet of the CPI's network named name, nil when
// there is no such network of ours or it has not exactly one subnet.
func (b *Backend) ownSubnet(name string) *net.IPNet {
	if name == "" {
		return nil
	}
	if _, doc, ok := b.ownedNetwork(name); ok {
		if subnets := xmldef.NetworkSubnets(doc); len(subnets) == 1 {
			return subnets[0]
		}
	}
	return nil
}

// subnetAllocationLock serialises the choice of free subnets, so parallel
// create_network calls with netmask_bits get distinct blocks.
const subnetAllocationLock = "managed-network-allocation"

// WithFreeSubnet runs create with the first /bits block of pool that no
// libvirt network or host route overlaps, holding a lock until create
// returns (create defines the network, which then counts as taken). A
// network of ours named name with one /bits subnet inside pool is what an
// earlier call for the same subnet made: create gets that subnet again.
func (b *Backend) WithFreeSubnet(ctx context.Context, pool *net.IPNet, bits int, name string, create func(*net.IPNet) error) error {
	unlock, err := b.locks.Lock(ctx, subnetAllocationLock)
	if err != nil {
		return err
	}
	defer unlock()
	if earlier := b.ownSubnet(name); earlier != nil && pool.Contains(earlier.IP) {
		if ones, _ := earlier.Mask.Size(); ones == bits {
			b.log.Info("managed network exists: its subnet is kept", "network", name, "subnet", earlier.String())
			return create(earlier)
		}
	}
	taken, err := b.takenSubnets()
	if err != nil {
		return err
	}
	subnets := make([]*net.IPNet, len(taken))
	for i, t := range taken {
		subnets[i] = t.subnet
	}
	subnet, err := network.FreeSubnet(pool, bits, subnets)
	if err != nil {
		return err
	}
	b.log.Info("chose a free subnet for a managed network", "subnet", subnet.String(), "pool", pool.String(), "netmask_bits", bits)
	return create(subnet)
}

type hostRoute struct {
	dev    string
	subnet *net.IPNet
}

// hostRoutes parses /proc/net/route (little-endian hex), default routes left out.
func hostRoutes(table string) []hostRoute {
	var routes []hostRoute
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dst, mask := hexIP(f[1]), hexIP(f[7])
		if dst == nil || mask == nil || dst.IsUnspecified() {
			continue
		}
		routes = append(routes, hostRoute{f[0], &net.IPNet{IP: dst, Mask: net.IPMask(mask)}})
	}
	return routes
}

func hexIP(h string) net.IP {
	var v uint32
	if _, err := fmt.Sscanf(h, "%08X", &v); err != nil {
		return nil
	}
	return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).To4()
}

func (b *Backend) networkDoc(n golibvirt.Network) (libvirtxml.Network, error) {
	var doc libvirtxml.Network
	raw, err := b.conn.NetworkGetXMLDesc(n, 0)
	if err == nil {
		err = doc.Unmarshal(raw)
	}
	return doc, err
}

// reserveAddresses gives each manual NIC on a network the CPI made a DHCP
// host entry (MAC -> IP, name = agent id), so the network's DHCP and DNS
// know the VM; undone on failure and by DeleteVM.
func (b *Backend) reserveAddresses(spec vm.Spec, undo *undoList) error {
	for _, nic := range spec.NICs {
		if nic.IP == "" || nic.UserMode {
			continue
		}
		netw, doc, ok := b.ownedNetwork(nic.LibvirtNetwork)
		if !ok || len(doc.IPs) == 0 {
			continue
		}
		host := libvirtxml.NetworkDHCPHost{MAC: strings.ToLower(nic.MAC), Name: spec.AgentID, IP: nic.IP}
		err := b.updateDHCPHost(netw, golibvirt.NetworkUpdateCommandAddLast, host)
		// Cut off mid-call, the entry (of this VM's MAC) may exist: ours.
		if err == nil || errors.Is(err, golibvirt.ErrInterrupted) {
			undo.push(func() { b.releaseAddress(nic.LibvirtNetwork, host.MAC) })
		}
		if err != nil {
			return fmt.Errorf("reserving %s for %s in libvirt network '%s': %w", nic.IP, nic.MAC, nic.LibvirtNetwork, err)
		}
	}
	return nil
}

// releaseAddresses removes the DHCP host entries of the domain's NICs.
func (b *Backend) releaseAddresses(def libvirtxml.Domain) {
	if def.Devices == nil {
		return
	}
	for _, iface := range def.Devices.Interfaces {
		if iface.Source != nil && iface.Source.Network != nil && iface.MAC != nil {
			b.releaseAddress(iface.Source.Network.Network, iface.MAC.Address)
		}
	}
}

func (b *Backend) releaseAddress(networkName, mac string) {
	netw, doc, ok := b.ownedNetwork(networkName)
	if !ok || len(doc.IPs) == 0 || doc.IPs[0].DHCP == nil {
		return // libvirt drops a <dhcp> left without hosts
	}
	for _, h := range doc.IPs[0].DHCP.Hosts {
		if strings.EqualFold(h.MAC, mac) {
			if err := b.updateDHCPHost(netw, golibvirt.NetworkUpdateCommandDelete, h); err != nil {
				b.log.Warn("could not remove DHCP reservation", "network", networkName, "mac", mac, "error", err)
			}
		}
	}
}

func (b *Backend) ownedNetwork(name string) (golibvirt.Network, libvirtxml.Network, bool) {
	netw, err := b.conn.NetworkLookupByName(name)
	if err != nil {
		return netw, libvirtxml.Network{}, false
	}
	doc, err := b.networkDoc(netw)
	return netw, doc, err == nil && xmldef.OwnsNetwork(doc)
}

// xmlOf encodes one libvirtxml element (a network update names a single
// element, not a whole document).
func xmlOf(v any) (string, error) {
	raw, err := xml.Marshal(v)
	return string(raw), err
}

func (b *Backend) updateDHCPHost(netw golibvirt.Network, cmd golibvirt.NetworkUpdateCommand, host libvirtxml.NetworkDHCPHost) error {
	raw, err := xmlOf(host)
	if err != nil {
		return err
	}
	flags := golibvirt.NetworkUpdateAffectConfig
	if active, _ := b.conn.NetworkIsActive(netw); active == 1 {
		flags |= golibvirt.NetworkUpdateAffectLive
	}
	return b.conn.NetworkUpdateCompat(netw, cmd, golibvirt.NetworkSectionIPDhcpHost, -1, raw, flags)
}
