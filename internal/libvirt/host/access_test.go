package host

import (
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
)

func TestSocketAccessFinding(t *testing.T) {
	cases := []struct {
		name   string
		access socketAccess
		want   doctor.Status
		says   string
	}{
		{"polkit socket without a bus", socketAccess{Path: "/run/libvirt/libvirt-sock", Mode: 0o777, WorldRW: true}, doctor.Warn, "polkit"},
		{"group socket, user in group", socketAccess{Path: "/s", Mode: 0o770, Group: "libvirt", UserInGrp: true}, doctor.OK, "through its group 'libvirt'"},
		{"group socket, user outside", socketAccess{Path: "/s", Mode: 0o770, Group: "libvirt"}, doctor.Fail, "usermod -aG libvirt"},
		{"root-only socket", socketAccess{Path: "/s", Mode: 0o700}, doctor.Fail, "unix_sock_group"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.access.finding("op")
			if f.Status != c.want || !strings.Contains(f.Detail+f.Fix, c.says) {
				t.Errorf("finding = %+v; want %s saying %q", f, c.want, c.says)
			}
		})
	}
}
