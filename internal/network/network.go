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
}

// ParseProps decodes network cloud_properties for the BOSH network boshName.
func ParseProps(src cloudprops.Source, boshName string) (Props, error) {
	var props Props
	if err := cloudprops.Decode(src, &props, fmt.Sprintf("cloud_properties of network '%s'", boshName)); err != nil {
		return Props{}, err
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
