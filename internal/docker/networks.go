package docker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/versions"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/lock"
)

// Subnet is what a Docker network the CPI creates gets: a bridge with
// this IPv4 subnet and gateway.
type Subnet struct {
	CIDR    string
	Gateway string
}

// nicPlan is one NIC as it will be made.
type nicPlan struct {
	bosh, network, ip, mac string
	create                 *Subnet
}

// perEndpointMAC: from API 1.44 every endpoint takes its own MAC; before,
// only the container's first network does (Config.MacAddress) and Docker
// derives the others' from their IP (02:42 and the four address bytes).
func perEndpointMAC(apiVer string) bool { return versions.GreaterThanOrEqualTo(apiVer, "1.44") }

func (n nicPlan) endpoint(apiVer string) *network.EndpointSettings {
	ep := &network.EndpointSettings{}
	if n.ip != "" {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.ip}
	}
	if perEndpointMAC(apiVer) {
		ep.MacAddress = n.mac
	}
	return ep
}

// planNICs orders the NICs (on API < 1.44 the dynamic one first: only the
// first NIC's MAC can be chosen, the others' follow from their static IP)
// and settles each MAC, returning settings that carry them.
func (r *Runtime) planNICs(spec containerSpec, settings agentsettings.Settings) ([]nicPlan, agentsettings.Settings, error) {
	if len(spec.NICs) == 0 {
		return nil, settings, errors.New("a VM needs at least one network")
	}
	settings.Networks = maps.Clone(settings.Networks)
	nics := orderNICs(spec.NICs)
	if !perEndpointMAC(r.apiVer) && len(nics) > 1 && nics[1].IP == "" {
		return nil, settings, fmt.Errorf("Docker runtime: with daemon API %s (before 1.44) only one network of a VM can be dynamic; BOSH networks '%s' and '%s' both are: %w",
			r.apiVer, nics[0].BOSHNetwork, nics[1].BOSHNetwork, cpierr.ErrNotSupported)
	}
	plan := make([]nicPlan, 0, len(nics))
	for i, nic := range nics {
		sn, ok := settings.Networks[nic.BOSHNetwork]
		if !ok {
			return nil, settings, fmt.Errorf("BOSH network '%s' is not in the agent settings", nic.BOSHNetwork)
		}
		p := nicPlan{bosh: nic.BOSHNetwork, network: nic.DockerNetwork, ip: nic.IP, mac: sn.MAC, create: nic.Create}
		if p.network == "" {
			p.network = r.cfg.Network
		}
		switch {
		case i > 0 && !perEndpointMAC(r.apiVer):
			mac, err := macFromIP(p.ip)
			if err != nil {
				return nil, settings, fmt.Errorf("BOSH network '%s': %w", p.bosh, err)
			}
			if p.mac != "" && p.mac != mac {
				r.log.Info("docker API before 1.44 derives this NIC's MAC from its IP; the settings get that MAC", "network", p.bosh, "api", r.apiVer)
			}
			p.mac = mac
		case p.mac == "":
			p.mac = randomMAC()
		}
		sn.MAC = p.mac
		// Docker gives the NIC its address and route: the agent must not
		// configure it (bosh-agent skips network setup when every non-vip
		// network is preconfigured, as the warden CPI marks them).
		sn.Preconfigured = true
		settings.Networks[p.bosh] = sn
		plan = append(plan, p)
	}
	return plan, settings, nil
}

// orderNICs puts the first dynamic NIC first, keeping the others' order.
func orderNICs(nics []nicSpec) []nicSpec {
	out := make([]nicSpec, 0, len(nics))
	first := -1
	for i, n := range nics {
		if n.IP == "" {
			first = i
			out = append(out, n)
			break
		}
	}
	for i, n := range nics {
		if i != first {
			out = append(out, n)
		}
	}
	return out
}

// macFromIP is the MAC Docker's bridge driver gives an endpoint without
// one: 02:42 followed by the IPv4 address.
func macFromIP(ip string) (string, error) {
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		return "", fmt.Errorf("'%s' is not an IPv4 address", ip)
	}
	return net.HardwareAddr{0x02, 0x42, v4[0], v4[1], v4[2], v4[3]}.String(), nil
}

// randomMAC is a locally administered unicast MAC (02:b0:5c:...).
func randomMAC() string {
	b := make([]byte, 3)
	rand.Read(b)
	return net.HardwareAddr{0x02, 0xb0, 0x5c, b[0], b[1], b[2]}.String()
}

// ensureNetwork finds the NIC's network, or creates it (labelled ours)
// when the plan asks, and checks a static IP lies in one of its subnets.
func (r *Runtime) ensureNetwork(ctx context.Context, n nicPlan, u *undo) error {
	nw, err := r.api.NetworkInspect(ctx, n.network, network.InspectOptions{})
	if err != nil && !errors.Is(r.fail(err, ""), cpierr.ErrNotFound) {
		return r.fail(err, "finding Docker network '%s'", n.network)
	}
	if err != nil {
		if n.create == nil {
			return fmt.Errorf("Docker network '%s' of BOSH network '%s': %w", n.network, n.bosh, cpierr.ErrNotFound)
		}
		if nw, err = r.createNetworkLocked(ctx, n, u); err != nil {
			return err
		}
	}
	if n.ip == "" {
		return nil
	}
	return ipInNetwork(n, nw)
}

// createNetworkLocked creates the network under a lock in store_dir, so
// that parallel calls on this machine make it once; a call elsewhere that
// wins the race is met by looking again after any error.
func (r *Runtime) createNetworkLocked(ctx context.Context, n nicPlan, u *undo) (network.Inspect, error) {
	release, err := lock.NewDir(filepath.Join(r.cfg.StoreDir, "locks")).Lock(ctx, "network-"+n.network)
	if err != nil {
		return network.Inspect{}, fmt.Errorf("creating Docker network '%s': %w", n.network, err)
	}
	defer release()
	if nw, err := r.api.NetworkInspect(ctx, n.network, network.InspectOptions{}); err == nil {
		return nw, nil
	}
	return r.createNetwork(ctx, n, u)
}

func (r *Runtime) createNetwork(ctx context.Context, n nicPlan, u *undo) (network.Inspect, error) {
	ipam := &network.IPAM{Config: []network.IPAMConfig{{Subnet: n.create.CIDR, Gateway: n.create.Gateway}}}
	created, err := r.api.NetworkCreate(ctx, n.network, network.CreateOptions{Driver: "bridge", IPAM: ipam, Labels: r.labels("network", n.network)})
	switch {
	case err != nil:
		// Another CPI call may have made it meanwhile (Docker then answers
		// a conflict, or that the pool overlaps): use theirs if it is there.
		if nw, ierr := r.api.NetworkInspect(ctx, n.network, network.InspectOptions{}); ierr == nil {
			return nw, nil
		}
		return network.Inspect{}, r.fail(err, "creating Docker network '%s' (subnet %s)", n.network, n.create.CIDR)
	default:
		r.log.Info("docker network created", "network", n.network, "subnet", n.create.CIDR)
		u.add("removing network "+n.network, func(ctx context.Context) error { return r.api.NetworkRemove(ctx, created.ID) })
	}
	nw, err := r.api.NetworkInspect(ctx, n.network, network.InspectOptions{})
	if err != nil {
		return nw, r.fail(err, "finding Docker network '%s'", n.network)
	}
	return nw, nil
}

func ipInNetwork(n nicPlan, nw network.Inspect) error {
	ip := net.ParseIP(n.ip)
	subnets := []string{}
	for _, c := range nw.IPAM.Config {
		_, cidr, err := net.ParseCIDR(c.Subnet)
		if err == nil && cidr.Contains(ip) {
			return nil
		}
		subnets = append(subnets, c.Subnet)
	}
	return fmt.Errorf("static IP %s of BOSH network '%s' is in no subnet of Docker network '%s' (%v)", n.ip, n.bosh, n.network, subnets)
}

// DeleteNetwork removes a Docker network this runtime created. ErrInUse
// while containers are on it; ErrNotFound when absent or not ours.
func (r *Runtime) DeleteNetwork(ctx context.Context, name string) error {
	nw, err := r.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return r.fail(err, "finding Docker network '%s'", name)
	}
	if !ours(nw.Labels) {
		return fmt.Errorf("Docker network '%s' was not made by this CPI: %w", name, cpierr.ErrNotFound)
	}
	if len(nw.Containers) > 0 {
		return fmt.Errorf("Docker network '%s' has %d container(s): %w", name, len(nw.Containers), cpierr.ErrInUse)
	}
	if err := r.api.NetworkRemove(ctx, nw.ID); err != nil {
		return r.fail(err, "removing Docker network '%s'", name)
	}
	return nil
}
