package host

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// The qemu+ssh:// path end to end: a private sshd on a loopback port in
// front of this host's libvirtd, the keys given as config text. The host
// key is checked (a wrong known_hosts line is refused, never replaced),
// only the configured key is offered, and the key files are the CPI's alone.
func TestConnectOverSSHWithConfiguredKeys(t *testing.T) {
	local := daemonURI(t)
	if os.Geteuid() != 0 {
		t.Fatal("this test starts sshd and logs in as root: run it as root (scripts/test.sh does)")
	}
	u, err := url.Parse(local)
	if err != nil {
		t.Fatal(err)
	}
	sock, tried := pickSocket(u, hostSocketEnv())
	if sock == "" {
		t.Fatalf("no local libvirt socket at %v to forward to", tried)
	}
	sshd, err := devenv.StartSSHD(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sshd.Stop()
	remote := fmt.Sprintf("qemu+ssh://root@127.0.0.1:%d/system?socket=%s", sshd.Port, sock)
	good := config.SSHAuth{PrivateKey: sshd.ClientKey, KnownHosts: sshd.KnownHosts}
	otherPriv, otherPub := newSSHKey(t)
	cases := []struct {
		name    string
		auth    config.SSHAuth
		wantErr string // "" = connects
	}{
		{"the configured key and host key", good, ""},
		{"a known_hosts line with another host key", config.SSHAuth{PrivateKey: good.PrivateKey,
			KnownHosts: devenv.KnownHostsLine(fmt.Sprintf("127.0.0.1:%d", sshd.Port), otherPub)}, "key mismatch"},
		{"a key sshd does not admit", config.SSHAuth{PrivateKey: otherPriv, KnownHosts: good.KnownHosts}, "unable to authenticate"},
		{"another host key, the check switched off", config.SSHAuth{PrivateKey: good.PrivateKey, InsecureIgnoreHostKey: true,
			KnownHosts: devenv.KnownHostsLine(fmt.Sprintf("127.0.0.1:%d", sshd.Port), otherPub)}, ""},
		{"no known_hosts, the check switched off", config.SSHAuth{PrivateKey: good.PrivateKey, InsecureIgnoreHostKey: true}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Config{URI: remote, StoreDir: t.TempDir(), SSH: &tc.auth}
			conn, via, err := Connect(context.Background(), cfg)
			if tc.wantErr != "" {
				if err == nil {
					conn.Disconnect()
					t.Fatalf("connected; want a refusal containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect over ssh: %v\nsshd log:\n%s", err, sshd.Log())
			}
			defer conn.Disconnect()
			if _, err := conn.ConnectGetLibVersion(); err != nil {
				t.Fatalf("a call over ssh (%s): %v", via, err)
			}
			assertOwnerOnly(t, cfg.RemoteDir())
		})
	}
}

// assertOwnerOnly checks that every file under dir is mode 0600.
func assertOwnerOnly(t *testing.T, dir string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		info, err := d.Info()
		if err == nil && info.Mode().Perm() != 0o600 {
			t.Errorf("key file %s has mode %o; want 0600", path, info.Mode().Perm())
		}
		return err
	})
	if err != nil || files == 0 {
		t.Fatalf("key files under %s: %d, %v", dir, files, err)
	}
}

// newSSHKey is a fresh private key (PEM) and its public half.
func newSSHKey(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	private, public, err := devenv.NewSSHKey()
	if err != nil {
		t.Fatal(err)
	}
	return private, public
}
