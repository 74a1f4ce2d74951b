package libvirt

import (
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
)

func TestDescribeUsers(t *testing.T) {
	got := describeUsers([]diskUser{
		{VM: "vm-1", Live: true, Config: true},
		{VM: "vm-2", Live: true},
		{VM: "vm-3", Config: true},
	})
	for _, want := range []string{"attached to VM 'vm-1'", "pending hot-unplug) by VM 'vm-2'", "attached to VM 'vm-3'"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
}

func TestModifyFlags(t *testing.T) {
	tests := []struct {
		live, config bool
		want         golibvirt.DomainDeviceModifyFlags
	}{
		{true, true, golibvirt.DomainDeviceModifyLive | golibvirt.DomainDeviceModifyConfig},
		{false, true, golibvirt.DomainDeviceModifyConfig},
		{true, false, golibvirt.DomainDeviceModifyLive},
	}
	for _, tt := range tests {
		if got := modifyFlags(tt.live, tt.config); got != tt.want {
			t.Errorf("modifyFlags(%v, %v) = %d, want %d", tt.live, tt.config, got, tt.want)
		}
	}
}

func TestHotplugHint(t *testing.T) {
	tests := []struct {
		msg  string
		hint bool
	}{
		{"internal error: No more available PCI slots", true},
		{"Failed to get \"write\" lock", false},
	}
	for _, tt := range tests {
		if got := hotplugHint(errString(tt.msg)) != ""; got != tt.hint {
			t.Errorf("hotplugHint(%q) given = %v, want %v", tt.msg, got, tt.hint)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
