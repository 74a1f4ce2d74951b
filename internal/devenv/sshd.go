package devenv

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is a private sshd on a loopback port, for the remote (qemu+ssh://)
// path: it admits root with ClientKey only and forwards to local unix
// sockets, as a libvirt host's sshd does for libvirt's ssh transport.
type SSHD struct {
	Port int
	// ClientKey is the private key sshd admits; KnownHosts is the line
	// naming sshd's host key for 127.0.0.1:Port.
	ClientKey, KnownHosts string
	cmd                   *exec.Cmd
	log                   string
}

// StartSSHD starts sshd with its keys and config in dir. It needs root
// and openssh-server (host.sh installs it). StrictModes is off: a test's
// directory lies under /tmp, whose mode sshd would refuse.
func StartSSHD(dir string) (*SSHD, error) {
	hostPub, err := writeKey(filepath.Join(dir, "host_key"))
	if err != nil {
		return nil, err
	}
	clientPub, err := writeKey(filepath.Join(dir, "client_key"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		return nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowStreamLocalForwarding yes
StrictModes no
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// sshd's privilege separation directory; a fresh host without a
	// running sshd has none.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, err
	}
	s := &SSHD{Port: port, log: filepath.Join(dir, "sshd.log")}
	key, err := os.ReadFile(filepath.Join(dir, "client_key"))
	if err != nil {
		return nil, err
	}
	s.ClientKey = string(key)
	s.KnownHosts = KnownHostsLine(fmt.Sprintf("127.0.0.1:%d", port), hostPub)
	s.cmd = exec.Command(sshdBinary(), "-D", "-e", "-f", confPath, "-E", s.log)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting sshd: %w", err)
	}
	if err := waitForPort(port, 10*time.Second); err != nil {
		s.Stop()
		logText, _ := os.ReadFile(s.log)
		return nil, fmt.Errorf("sshd on 127.0.0.1:%d: %w; its log:\n%s", port, err, logText)
	}
	return s, nil
}

// Stop ends sshd.
func (s *SSHD) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Log is what sshd logged, for a failing test's message.
func (s *SSHD) Log() string {
	text, _ := os.ReadFile(s.log)
	return string(text)
}

func sshdBinary() string {
	if path, err := exec.LookPath("sshd"); err == nil {
		return path
	}
	return "/usr/sbin/sshd"
}

// writeKey writes a new private key to path and returns its public half.
func writeKey(path string) (ssh.PublicKey, error) {
	private, public, err := NewSSHKey()
	if err != nil {
		return nil, err
	}
	return public, os.WriteFile(path, []byte(private), 0o600)
}

// NewSSHKey makes an ed25519 key pair: the private key in OpenSSH PEM
// form, unencrypted, and the public key.
func NewSSHKey() (string, ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return "", nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", nil, err
	}
	return string(pem.EncodeToMemory(block)), sshPub, nil
}

// KnownHostsLine names key as the host key of hostPort (host:port).
func KnownHostsLine(hostPort string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{knownhosts.Normalize(hostPort)}, key) + "\n"
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitForPort(port int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening within %s: %w", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
