package libvirt

import (
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
)

func TestUndoListRunsNewestFirst(t *testing.T) {
	var order []int
	var undo undoList
	for i := range 3 {
		undo.push(func() { order = append(order, i) })
	}
	undo.run()
	if len(order) != 3 || order[0] != 2 || order[2] != 0 {
		t.Errorf("undo order = %v, want [2 1 0]", order)
	}
}

func TestConsoleLogPathFollowsWhereLibvirtdRuns(t *testing.T) {
	cases := []struct {
		uri, want string
	}{
		{"qemu:///system", "/store/console/vm-1.log"},
		{"qemu+unix:///system?socket=/run/x/libvirt-sock", "/store/console/vm-1.log"},
		{"qemu+tcp://10.0.0.11/system", "/var/log/libvirt/qemu/vm-1-console.log"},
		{"qemu+tls://host.example/system", "/var/log/libvirt/qemu/vm-1-console.log"},
		{"qemu+ssh://root@10.0.0.11/system", "/var/log/libvirt/qemu/vm-1-console.log"},
	}
	for _, tc := range cases {
		b := &Backend{cfg: config.Config{URI: tc.uri, StoreDir: "/store"}}
		if got := b.consoleLogPath("vm-1"); got != tc.want {
			t.Errorf("%s: console log %s; want %s", tc.uri, got, tc.want)
		}
	}
}
