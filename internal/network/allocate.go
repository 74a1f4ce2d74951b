package network

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
)

// DefaultManagedPool is where create_network carves the subnets of managed
// networks that give netmask_bits and no range (config managed_network_pool).
const DefaultManagedPool = "10.254.0.0/16"

// ParsePool reads a managed network pool: an IPv4 CIDR from /8 to /28.
func ParsePool(cidr string) (*net.IPNet, error) {
	_, pool, err := net.ParseCIDR(strings.TrimSpace(cidr))
	if err != nil || pool.IP.To4() == nil {
		return nil, fmt.Errorf("'%s' is not an IPv4 CIDR", cidr)
	}
	if ones, _ := pool.Mask.Size(); ones < 8 || ones > 28 {
		return nil, fmt.Errorf("'%s' is not a /8 to /28", cidr)
	}
	return pool, nil
}

// FreeSubnet is the first /bits block of pool, in address order, that
// overlaps none of taken; an error says the pool is full or bits does not
// fit it.
func FreeSubnet(pool *net.IPNet, bits int, taken []*net.IPNet) (*net.IPNet, error) {
	poolBits, _ := pool.Mask.Size()
	if bits < poolBits || bits > 30 {
		return nil, fmt.Errorf("netmask_bits %d does not fit the managed network pool %s (/%d to /30)", bits, pool, poolBits)
	}
	mask := net.CIDRMask(bits, 32)
	start := binary.BigEndian.Uint32(pool.IP.To4())
	step := uint32(1) << (32 - bits)
	blocks := uint64(1) << (bits - poolBits)
	for i := uint64(0); i < blocks; i++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, start+uint32(i)*step)
		candidate := &net.IPNet{IP: ip, Mask: mask}
		if !overlapsAny(candidate, taken) {
			return candidate, nil
		}
	}
	return nil, fmt.Errorf("the managed network pool %s has no free /%d: every block overlaps a libvirt network or a host route (free some, or set managed_network_pool)", pool, bits)
}

func overlapsAny(subnet *net.IPNet, taken []*net.IPNet) bool {
	for _, t := range taken {
		if Overlaps(subnet, t) {
			return true
		}
	}
	return false
}
