// Package network maps BOSH networks to runtime networks and NICs.
package network

import (
	"crypto/rand"
	"fmt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cloudprops"
)

// Props are network cloud_properties.
type Props struct {
	// Name is the libvirt network; the CPI config's default when empty.
	Name string `json:"name"`
	// Mode is how the NIC reaches a network: empty for the existing
	// libvirt network Name, ModeUser for QEMU's user-mode networking.
	Mode string `json:"mode"`
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
	if props.Mode != "" && props.Mode != ModeUser {
		return Props{}, fmt.Errorf("cloud_properties of network '%s': mode '%s' is not known; use \"%s\" or leave it out for an existing libvirt network", boshName, props.Mode, ModeUser)
	}
	return props, nil
}

// NewMAC returns a random MAC in QEMU's locally administered 52:54:00 range,
// the range libvirt itself picks from.
func NewMAC() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating a MAC address: %w", err)
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}
