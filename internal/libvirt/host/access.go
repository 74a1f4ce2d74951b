package host

import (
	"fmt"
	"net/url"
	"os"
	"os/user"
	"slices"
	"syscall"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
)

// socketAccess is how the system daemon's socket lets a user in, read from
// its owner and mode: libvirt admits a non-root user either by the socket's
// group (no polkit: auth_unix_rw = "none", unix_sock_group, mode 0770) or
// by asking polkit (a world-writable socket), which needs a system bus.
type socketAccess struct {
	Path      string
	Mode      os.FileMode
	Group     string
	GroupGID  uint32
	WorldRW   bool
	UserInGrp bool
}

func readSocketAccess(path string, userGIDs []uint32) (socketAccess, error) {
	info, err := os.Stat(path)
	if err != nil {
		return socketAccess{}, err
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	a := socketAccess{Path: path, Mode: info.Mode().Perm(), WorldRW: info.Mode().Perm()&0o006 == 0o006}
	if st != nil {
		a.GroupGID = st.Gid
		a.UserInGrp = slices.Contains(userGIDs, st.Gid)
		if g, err := user.LookupGroupId(fmt.Sprint(st.Gid)); err == nil {
			a.Group = g.Name
		}
	}
	return a, nil
}

// accessFinding says which of libvirt's two ways admits this user.
func (a socketAccess) finding(username string) doctor.Finding {
	const check = "access"
	switch {
	case a.WorldRW:
		return doctor.Finding{Check: check, Status: doctor.Warn,
			Detail: fmt.Sprintf("%s is open to all (mode %04o): libvirtd admits non-root users through polkit, which needs a system bus; without systemd it answers 'Unable to get system bus connection'", a.Path, a.Mode),
			Fix:    "with systemd: add the user to group libvirt (Debian's polkit rule admits it); without: start libvirtd with auth_unix_rw = \"none\", unix_sock_group = \"libvirt\", unix_sock_rw_perms = \"0770\" (scripts/host.sh does), then sudo usermod -aG libvirt " + username}
	case a.Mode&0o060 == 0o060 && a.UserInGrp:
		return doctor.Finding{Check: check, Status: doctor.OK,
			Detail: fmt.Sprintf("%s admits %s through its group '%s' (mode %04o, no polkit involved)", a.Path, username, a.Group, a.Mode)}
	case a.Mode&0o060 == 0o060:
		return doctor.Finding{Check: check, Status: doctor.Fail,
			Detail: fmt.Sprintf("%s admits only root and group '%s' (mode %04o), and %s is not in that group", a.Path, a.Group, a.Mode, username),
			Fix:    fmt.Sprintf("sudo usermod -aG %s %s, then log in again (or run the CPI as root, or use qemu:///session)", a.Group, username)}
	}
	return doctor.Finding{Check: check, Status: doctor.Fail,
		Detail: fmt.Sprintf("%s admits only its owner (mode %04o)", a.Path, a.Mode),
		Fix:    "start libvirtd with unix_sock_group = \"libvirt\" and unix_sock_rw_perms = \"0770\" (scripts/host.sh does), or run the CPI as root"}
}

// checkAccess explains, for a non-root user, how the local daemon admits
// it; nil for root and remote hosts. For a session URI it says what a
// session daemon offers instead.
func checkAccess(cfg config.Config) []doctor.Finding {
	u, err := url.Parse(cfg.URI)
	if err != nil || !isLocalUnix(u) || os.Geteuid() == 0 {
		return nil
	}
	me, err := user.Current()
	if err != nil {
		return nil
	}
	if isSession(u) {
		return []doctor.Finding{{Check: "access", Status: doctor.OK,
			Detail: fmt.Sprintf("qemu:///session: a libvirtd of %s's own runs QEMU as %s; it has no libvirt networks of its own: give BOSH networks cloud_properties {\"mode\": \"user\"} (QEMU user-mode networking), or a bridge your admin allows in /etc/qemu/bridge.conf", me.Username, me.Username)}}
	}
	if u.Query().Get("socket") != "" {
		return nil
	}
	sock, _ := pickSocket(u, hostSocketEnv())
	if sock == "" {
		return nil // the libvirtd finding already says no socket was found
	}
	a, err := readSocketAccess(sock, currentGIDs())
	if err != nil {
		return nil
	}
	return []doctor.Finding{a.finding(me.Username)}
}

func currentGIDs() []uint32 {
	gids, _ := os.Getgroups()
	out := []uint32{uint32(os.Getegid())}
	for _, g := range gids {
		out = append(out, uint32(g))
	}
	return out
}
