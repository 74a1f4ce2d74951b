package host

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
)

// modularDaemons names libvirt's per-driver daemon for each URI driver:
// hosts with the modular daemons have e.g. virtqemud-sock and no libvirt-sock.
var modularDaemons = map[string]string{
	"qemu": "virtqemud", "lxc": "virtlxcd", "xen": "virtxend", "vbox": "virtvboxd",
	"vz": "virtvzd", "ch": "virtchd", "test": "",
}

// socketEnv is what decides where local sockets live; a value so tests can
// describe a host without touching this one.
type socketEnv struct {
	RunDir, RuntimeDir, Home string
	Exists                   func(string) bool
}

func hostSocketEnv() socketEnv {
	home, _ := os.UserHomeDir()
	return socketEnv{RunDir: "/var/run/libvirt", RuntimeDir: os.Getenv("XDG_RUNTIME_DIR"), Home: home,
		Exists: func(p string) bool { _, err := os.Stat(p); return err == nil }}
}

// isSession tells whether uri names a per-user daemon (qemu:///session).
func isSession(u *url.URL) bool { return u.Path == "/session" }

// IsSessionURI tells whether uri names a per-user daemon, whose QEMU runs
// as the CPI's own user.
func IsSessionURI(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && isSession(u)
}

// localSockets lists, in the order libvirt's own client tries them, the
// sockets a local URI without ?socket= may be served on: the monolithic
// libvirtd's, then the driver's modular daemon's. Session daemons live in
// $XDG_RUNTIME_DIR/libvirt, or ~/.cache/libvirt without it.
func localSockets(u *url.URL, env socketEnv) []string {
	dir := env.RunDir
	if isSession(u) {
		dir = filepath.Join(env.Home, ".cache", "libvirt")
		if env.RuntimeDir != "" {
			dir = filepath.Join(env.RuntimeDir, "libvirt")
		}
	}
	socks := []string{filepath.Join(dir, "libvirt-sock")}
	driver := strings.Split(u.Scheme, "+")[0]
	if d := modularDaemons[driver]; d != "" {
		socks = append(socks, filepath.Join(dir, d+"-sock"))
	}
	return socks
}

// LocalSocket is the socket a local URI connects to on this machine, or
// "" and the sockets tried.
func LocalSocket(u *url.URL) (string, []string) { return pickSocket(u, hostSocketEnv()) }

// pickSocket is the first of localSockets that exists, or "" and the list.
func pickSocket(u *url.URL, env socketEnv) (string, []string) {
	socks := localSockets(u, env)
	for _, s := range socks {
		if env.Exists(s) {
			return s, socks
		}
	}
	return "", socks
}

// isLocalUnix tells whether uri is served on a local unix socket.
func isLocalUnix(u *url.URL) bool {
	scheme := strings.SplitN(u.Scheme, "+", 2)
	return (len(scheme) == 1 && u.Host == "") || (len(scheme) == 2 && scheme[1] == "unix")
}

// dialerFor returns the dialer for uri and what it dials, for logs and doctor.
// Remote transports and an explicit ?socket= go through go-libvirt's own URI
// handling; a local URI picks the socket the way libvirt's client does, and
// starts the user's session daemon when none runs, as libvirt's client does.
func dialerFor(u *url.URL) (socket.Dialer, string, error) {
	if !isLocalUnix(u) || u.Query().Get("socket") != "" {
		return nil, u.String(), nil
	}
	sock, tried := pickSocket(u, hostSocketEnv())
	if sock == "" && isSession(u) {
		var err error
		if sock, err = startSessionDaemon(tried[0]); err != nil {
			return nil, "", err
		}
	}
	if sock == "" {
		return nil, "", fmt.Errorf("no libvirt socket at %s (is libvirtd, or virtqemud, running?)", strings.Join(tried, " or "))
	}
	return dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(dialTimeout)), "socket " + sock, nil
}

// sessionDaemonWait bounds how long a freshly started session daemon may
// take to create its socket.
const sessionDaemonWait = 10 * time.Second

// startSessionDaemon starts `libvirtd --timeout=120` for this user, which is
// what libvirt's client library does for a session URI: there is no API for
// it. The daemon exits by itself once idle.
func startSessionDaemon(sock string) (string, error) {
	cmd := exec.Command(libvirtdBinary(), "--daemon", "--timeout=120")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("starting the session libvirtd for this user: %v: %s", err, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(sessionDaemonWait)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(sock); err == nil {
			return sock, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("the session libvirtd started but made no socket at %s within %s", sock, sessionDaemonWait)
}

// libvirtdBinary: a user's PATH often lacks /usr/sbin, where it is
// installed; libvirt's own client uses its compiled-in path the same way.
func libvirtdBinary() string {
	if path, err := exec.LookPath("libvirtd"); err == nil {
		return path
	}
	return "/usr/sbin/libvirtd"
}

// dial connects to uri: with the remote keys cfg gives, on the socket
// dialerFor picked, or as go-libvirt reads the URI.
func dial(ctx context.Context, u *url.URL, cfg config.Config) (*golibvirt.Libvirt, string, error) {
	dialer, via, err := remoteDialer(u, cfg)
	if dialer == nil && err == nil {
		dialer, via, err = dialerFor(u)
	}
	if err != nil {
		return nil, "", err
	}
	if dialer == nil {
		conn, err := golibvirt.ConnectToURI(u)
		return conn, via, err
	}
	conn := golibvirt.NewWithDialer(dialer)
	if err := conn.ConnectToURI(golibvirt.RemoteURI(u)); err != nil {
		return nil, via, fmt.Errorf("%s: %w", via, err)
	}
	return conn, via, nil
}
