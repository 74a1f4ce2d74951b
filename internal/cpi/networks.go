package cpi

import (
	"errors"
	"regexp"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

// CreateNetwork is create_network, the director's managed networks
// (director network_lifecycle.enabled): one call per subnet, answered with
// [network CID, {range, gateway, reserved}, cloud_properties]. The CID is
// the libvirt network's name and the cloud_properties name it, so the
// create_vm calls on that subnet find the network as an existing one.
func (c *CPI) CreateNetwork(def network.Definition) (string, network.Addresses, map[string]any, error) {
	managed, err := network.PlanManaged(def)
	if err != nil {
		return "", network.Addresses{}, nil, cpierr.New(cpierr.TypeCpiError, err, "create_network")
	}
	name := managed.Plan.Name
	nets, err := c.networks()
	if err != nil {
		return "", network.Addresses{}, nil, err
	}
	if err := nets.CreateNetwork(c.ctx, managed.Plan); err != nil {
		return "", network.Addresses{}, nil, cpierr.Wrap(err, "creating managed network '%s'", name)
	}
	c.log.Info("managed network ready", "network", name, "range", managed.Addresses.Range, "gateway", managed.Addresses.Gateway)
	return name, managed.Addresses, managed.CloudProperties, nil
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
