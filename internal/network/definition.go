package network

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cloudprops"
)

// Definition is the director's argument to create_network: one subnet of
// a managed network (bosh-director's CreateNetworkStage#fetch_cpi_input).
// The director sends range and gateway when the manifest has them, else
// netmask_bits, and the subnet's cloud_properties merged over its AZs'.
type Definition struct {
	Type            string          `json:"type"`
	Range           string          `json:"range"`
	Gateway         string          `json:"gateway"`
	NetmaskBits     int             `json:"netmask_bits"`
	CloudProperties json.RawMessage `json:"cloud_properties"`
}

// Addresses is create_network's second result: what the director records
// for the subnet when its manifest left range or gateway out, and the
// addresses it must never hand out.
type Addresses struct {
	Range    string   `json:"range"`
	Gateway  string   `json:"gateway"`
	Reserved []string `json:"reserved"`
}

// Managed is a managed network subnet planned from a Definition.
type Managed struct {
	Plan      *Plan
	Addresses Addresses
	// CloudProperties is create_network's third result: the director puts
	// it into every VM's network on this subnet, so create_vm finds the
	// network by name (no mode: it exists, and create_vm never creates it).
	CloudProperties map[string]any
}

// PlanManaged plans the libvirt network of one managed subnet. The network
// is named by cloud_properties.name, or after its subnet; the same
// definition always gives the same name, so a create_network retried after
// a kill finds what the first made. mode defaults to nat.
func PlanManaged(def Definition) (*Managed, error) {
	if def.Type != "" && def.Type != "manual" {
		return nil, fmt.Errorf("create_network: network type '%s' is not supported: managed networks are manual", def.Type)
	}
	var props Props
	if err := cloudprops.DecodeJSON(def.CloudProperties, &props, "create_network: cloud_properties"); err != nil {
		return nil, err
	}
	if props.Mode == "" {
		props.Mode = ModeNAT
	}
	if err := props.check("managed"); err != nil {
		return nil, fmt.Errorf("create_network: %w", err)
	}
	if props.Mode == ModeUser {
		return nil, fmt.Errorf("create_network: mode user is QEMU's own NAT inside each VM, not a network the CPI can create")
	}
	if def.Range == "" {
		return nil, fmt.Errorf("create_network: the subnet has no range (the CPI picks one for netmask_bits before planning)")
	}
	_, subnet, err := net.ParseCIDR(strings.TrimSpace(def.Range))
	if err != nil || subnet.IP.To4() == nil {
		return nil, fmt.Errorf("create_network: range '%s' is not an IPv4 CIDR", def.Range)
	}
	if ones, _ := subnet.Mask.Size(); ones == 0 || ones > 30 {
		return nil, fmt.Errorf("create_network: range '%s' is not a /1 to /30", def.Range)
	}
	gateway := def.Gateway
	if gateway == "" {
		gateway = offset(subnet.IP, 1).String()
	}
	if props.Name == "" {
		props.Name = nameFor(subnet)
	}
	first := offset(subnet.IP, 1).String()
	netmask := net.IP(subnet.Mask).String()
	plan, err := PlanFor(props, "managed", first, netmask, gateway)
	if err != nil {
		return nil, fmt.Errorf("create_network: %w", err)
	}
	m := &Managed{
		Plan:            plan,
		Addresses:       Addresses{Range: subnet.String(), Gateway: gateway, Reserved: []string{}},
		CloudProperties: map[string]any{"name": props.Name},
	}
	if plan.DHCPFirst != nil {
		// Static IPs from the director must not collide with DHCP leases.
		m.Addresses.Reserved = append(m.Addresses.Reserved, plan.DHCPFirst.String()+" - "+plan.DHCPLast.String())
	}
	return m, nil
}

// RequestedName is the libvirt network name a managed subnet's
// cloud_properties give, "" when they give none (it is then named after
// its subnet).
func RequestedName(def Definition) (string, error) {
	var props Props
	if err := cloudprops.DecodeJSON(def.CloudProperties, &props, "create_network: cloud_properties"); err != nil {
		return "", err
	}
	return props.Name, nil
}

// nameFor names a managed network after its subnet: bosh-10-0-5-0-24.
func nameFor(subnet *net.IPNet) string {
	ones, _ := subnet.Mask.Size()
	return fmt.Sprintf("bosh-%s-%d", strings.ReplaceAll(subnet.IP.String(), ".", "-"), ones)
}

func offset(ip net.IP, n uint32) net.IP {
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, binary.BigEndian.Uint32(ip.To4())+n)
	return out
}
