package network

import (
	"net"
	"strings"
	"testing"
)

func cidrs(t *testing.T, list ...string) []*net.IPNet {
	t.Helper()
	var out []*net.IPNet
	for _, c := range list {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestFreeSubnet(t *testing.T) {
	cases := []struct {
		name, pool string
		bits       int
		taken      []string
		want, err  string
	}{
		{"empty pool: its first block", "10.254.0.0/16", 24, nil, "10.254.0.0/24", ""},
		{"a taken block is passed over", "10.254.0.0/16", 24, []string{"10.254.0.0/24"}, "10.254.1.0/24", ""},
		{"a smaller network inside a block takes the block", "10.254.0.0/16", 24, []string{"10.254.0.128/28"}, "10.254.1.0/24", ""},
		{"a larger route covering blocks", "10.254.0.0/16", 24, []string{"10.254.0.0/23", "192.168.122.0/24"}, "10.254.2.0/24", ""},
		{"blocks after the first free one", "10.254.0.0/16", 28, []string{"10.254.0.16/28"}, "10.254.0.0/28", ""},
		{"the whole pool as one block", "10.254.0.0/24", 24, nil, "10.254.0.0/24", ""},
		{"a full pool", "10.254.0.0/24", 25, []string{"10.254.0.0/25", "10.254.0.128/25"}, "", "no free /25"},
		{"a route over the pool", "10.254.0.0/16", 24, []string{"10.0.0.0/8"}, "", "no free /24"},
		{"larger than the pool", "10.254.0.0/16", 15, nil, "", "does not fit"},
		{"smaller than /30", "10.254.0.0/16", 31, nil, "", "does not fit"},
	}
	for _, tc := range cases {
		pool, err := ParsePool(tc.pool)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FreeSubnet(pool, tc.bits, cidrs(t, tc.taken...))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, %v; want an error with %q", tc.name, got, err, tc.err)
		case tc.err == "" && (err != nil || got.String() != tc.want):
			t.Errorf("%s: %v, %v; want %s", tc.name, got, err, tc.want)
		}
	}
}

func TestParsePool(t *testing.T) {
	cases := map[string]string{
		"10.254.0.0/16": "", " 172.30.0.0/20 ": "", "10.0.0.0/8": "",
		"10.0.0.0/7": "not a /8 to /28", "10.0.0.0/29": "not a /8 to /28",
		"fd00::/64": "not an IPv4 CIDR", "10.254.0.0": "not an IPv4 CIDR",
	}
	for in, want := range cases {
		_, err := ParsePool(in)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("ParsePool(%q) = %v; want %q", in, err, want)
		}
	}
}
