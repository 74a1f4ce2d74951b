package cpi

import (
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cloudfoundry/bosh-cpi-go/apiv1"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

// CreateNetwork is create_network, the director's managed networks
// (director network_lifecycle.enabled): one call per subnet, answered with
// [network CID, {range, gateway, reserved}, cloud_properties]. The CID is
// the libvirt network's name and the cloud_properties name it, so the
// create_vm calls on that subnet find the network as an existing one.
//
// A subnet with netmask_bits and no range gets the first free block of
// that size in managed_network_pool.
func (c *CPI) CreateNetwork(def network.Definition) (string, network.Addresses, map[string]any, error) {
	if def.Range == "" && def.NetmaskBits == 0 {
		return "", network.Addresses{}, nil, cpierr.New(cpierr.TypeCpiError, nil, "create_network: the subnet has neither a range nor netmask_bits")
	}
	nets, err := c.networks()
	if err != nil {
		return "", network.Addresses{}, nil, err
	}
	var managed *network.Managed
	create := func(def network.Definition) error {
		var err error
		if managed, err = network.PlanManaged(def); err != nil {
			return cpierr.New(cpierr.TypeCpiError, err, "create_network")
		}
		if err := nets.CreateNetwork(c.ctx, managed.Plan); err != nil {
			return cpierr.Wrap(err, "creating managed network '%s'", managed.Plan.Name)
		}
		return nil
	}
	if def.Range != "" {
		err = create(def)
	} else {
		err = c.createInFreeSubnet(nets, def, create)
	}
	if err != nil {
		return "", network.Addresses{}, nil, err
	}
	c.log.Info("managed network ready", "network", managed.Plan.Name, "range", managed.Addresses.Range, "gateway", managed.Addresses.Gateway)
	return managed.Plan.Name, managed.Addresses, managed.CloudProperties, nil
}

// createInFreeSubnet runs create with def given a free /netmask_bits block
// of the managed network pool as its range, while that block stays
// reserved.
func (c *CPI) createInFreeSubnet(nets Networks, def network.Definition, create func(network.Definition) error) error {
	if def.NetmaskBits < 1 || def.NetmaskBits > 30 {
		return cpierr.New(cpierr.TypeCpiError, nil, "create_network: netmask_bits %d is not 1 to 30", def.NetmaskBits)
	}
	pool, err := network.ParsePool(c.cfg.ManagedNetworkPool)
	if err != nil {
		return cpierr.New(cpierr.TypeCpiError, err, "create_network: managed_network_pool")
	}
	name, err := network.RequestedName(def)
	if err != nil {
		return cpierr.New(cpierr.TypeCpiError, err, "create_network")
	}
	err = nets.WithFreeSubnet(c.ctx, pool, def.NetmaskBits, name, func(subnet *net.IPNet) error {
		def.Range = subnet.String()
		return create(def)
	})
	return cpierr.Wrap(err, "create_network: choosing a /%d in managed_network_pool %s", def.NetmaskBits, pool)
}

// networkNames are the names libvirt takes for a network that a CID may
// carry: no slash, no spaces, nothing a path or an XML attribute trips on.
var networkNames = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// DeleteNetwork is delete_network. A network that is not there answers
// NetworkNotFound, which the director takes as deleted.
func (c *CPI) DeleteNetwork(cid string) error {
	if !networkNames.MatchString(cid) {
		return cpierr.New(cpierr.TypeNetworkNotFound, nil, "network '%s' not found", cid)
	}
	nets, err := c.networks()
	if err != nil {
		return err
	}
	err = nets.DeleteNetwork(c.ctx, cid)
	switch {
	case errors.Is(err, cpierr.ErrNotFound):
		return cpierr.New(cpierr.TypeNetworkNotFound, err, "deleting network '%s'", cid)
	case errors.Is(err, cpierr.ErrInUse):
		// A retry helps once the director has deleted those VMs.
		return cpierr.New(cpierr.TypeCloudError, err, "deleting network '%s'", cid).Retryable()
	}
	return cpierr.Wrap(err, "deleting network '%s'", cid)
}

func (c *CPI) networks() (Networks, error) {
	b, err := c.openRuntime()
	if err != nil {
		return nil, err
	}
	nets, ok := b.(Networks)
	if !ok {
		return nil, cpierr.NotSupported("the %s runtime does not create networks", c.descriptor.Name)
	}
	return nets, nil
}

// addressPoll is how often create_vm looks for dynamic addresses.
const addressPoll = 2 * time.Second

// withDynamicAddresses answers create_vm's networks with the address each
// dynamic network's NIC got, as far as the host knows it within
// dynamic_ip_wait seconds (one look when 0). The VM is made by then: an
// address not known yet is logged, never a failure.
func (c *CPI) withDynamicAddresses(b Runtime, cid string, networks apiv1.Networks, settings agentsettings.Settings) apiv1.Networks {
	finder, ok := b.(Addresses)
	if !ok {
		return networks
	}
	macs := map[string]string{} // BOSH network -> MAC
	for name, n := range networks {
		if n.IsDynamic() && settings.Networks[name].MAC != "" {
			macs[name] = settings.Networks[name].MAC
		}
	}
	if len(macs) == 0 {
		return networks
	}
	deadline := time.Now().Add(time.Duration(c.cfg.DynamicIPWait) * time.Second)
	var found map[string]string
	for {
		var err error
		if found, err = finder.NICAddresses(c.ctx, cid); err != nil {
			c.log.Warn("could not read the VM's addresses", "vm_cid", cid, "error", err)
		}
		if knowsAll(found, macs) || !time.Now().Add(addressPoll).Before(deadline) {
			break
		}
		select {
		case <-c.ctx.Done():
			return networks
		case <-time.After(addressPoll):
		}
	}
	ips := map[string]string{}
	var unknown []string
	for name, mac := range macs {
		if ip := found[strings.ToLower(mac)]; ip != "" {
			ips[name] = ip
			c.log.Info("dynamic network address", "vm_cid", cid, "network", name, "mac", mac, "ip", ip)
		} else {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		c.log.Info("dynamic network address not known yet: the guest has no DHCP lease, guest agent answer or ARP entry so far; create_vm answers without it",
			"vm_cid", cid, "networks", unknown, "waited_seconds", c.cfg.DynamicIPWait)
	}
	if len(ips) == 0 {
		return networks
	}
	out, err := withIPs(networks, ips)
	if err != nil {
		c.log.Warn("could not add the discovered addresses to create_vm's networks", "vm_cid", cid, "error", err)
		return networks
	}
	return out
}

func knowsAll(found, macs map[string]string) bool {
	for _, mac := range macs {
		if found[strings.ToLower(mac)] == "" {
			return false
		}
	}
	return true
}

// withIPs is networks with ip set on the named ones; apiv1's networks have
// no IP setter, so they go through their JSON form.
func withIPs(networks apiv1.Networks, ips map[string]string) (apiv1.Networks, error) {
	raw, err := json.Marshal(networks)
	if err != nil {
		return nil, err
	}
	var generic map[string]map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, err
	}
	for name, ip := range ips {
		generic[name]["ip"] = ip
	}
	if raw, err = json.Marshal(generic); err != nil {
		return nil, err
	}
	var out apiv1.Networks
	err = json.Unmarshal(raw, &out)
	return out, err
}
