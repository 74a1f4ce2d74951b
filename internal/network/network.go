// Package network maps BOSH networks to runtime networks and NICs.
package network

import (
	"fmt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cloudprops"
)

// Props are network cloud_properties.
type Props struct {
	// Name is the libvirt network; the CPI config's default when empty.
	Name string `json:"name"`
	// Mode is how the NIC reaches a network: empty for the existing
	// libvirt network Name, ModeUser for QEMU's user-mode networking, or
	// one of the created modes (nat, isolated, open, bridge): Name is made
	// when it does not exist.
	Mode string `json:"mode"`
	// Bridge is the host bridge of mode bridge.
	Bridge string `json:"bridge"`
	// DHCPRange is "<first>-<last>", a dynamic range for a created network.
	DHCPRange string `json:"dhcp_range"`
}

// ModeUser is QEMU's user-mode networking (NAT inside the QEMU process): no
// libvirt network, no bridge and no root, so a plain user's qemu:///session
// has a network. Guests get 10.0.2.15 from its DHCP, gateway 10.0.2.2.
const ModeUser = "user"

// ParseProps decodes network cloud_properties for the BOSH network boshName.
func ParseProps(src cloudprops.Source, boshName string) (Props, error) {
	var props Props
	if err := cloudprops.Decode(src, &props, fmt.Sprintf("cloud_properties of network '%s'", boshName)); err != nil {
		return Props{}, err
	}
	return props, props.check(boshName)
}

func (props Props) check(boshName string) error {
	if props.Mode != "" && props.Mode != ModeUser && !createdModes[props.Mode] {
		return fmt.Errorf("cloud_properties of network '%s': mode '%s' is not one of nat, isolated, open, bridge, user (or left out for an existing libvirt network)", boshName, props.Mode)
	}
	if props.Bridge != "" && props.Mode != ModeBridge {
		return fmt.Errorf("cloud_properties of network '%s': bridge '%s' is only used with mode bridge", boshName, props.Bridge)
	}
	if props.DHCPRange != "" && !createdModes[props.Mode] {
		return fmt.Errorf("cloud_properties of network '%s': dhcp_range is only used for a network the CPI creates (mode nat, isolated or open)", boshName)
	}
	return nil
}
