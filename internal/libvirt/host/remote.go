package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/atomicfile"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/tlsrefusal"
)

// remoteDialer dials a qemu+ssh:// or qemu+tls:// URI with the key material
// cpi.json (or the call's context) gave as text. go-libvirt's dialers read
// files, so the keys are written under store_dir/remote first; it returns
// nil when the config has no keys for the URI's transport.
func remoteDialer(u *url.URL, cfg config.Config) (socket.Dialer, string, error) {
	switch {
	case cfg.SSH != nil && cfg.Transport() == "ssh":
		dir, err := writeKeyFiles(cfg.RemoteDir(), map[string]string{
			"id": cfg.SSH.PrivateKey, "known_hosts": cfg.SSH.KnownHosts})
		if err != nil {
			return nil, "", err
		}
		if cfg.SSH.InsecureIgnoreHostKey {
			return sshDialer(u, dir, dialers.WithInsecureIgnoreHostKey()), "ssh " + u.Host + " (host key NOT checked: ssh.insecure_ignore_host_key)", nil
		}
		return sshDialer(u, dir), "ssh " + u.Host, nil
	case cfg.TLS != nil && cfg.Transport() == "tls":
		// The names libvirt's own client looks for in a pkipath.
		dir, err := writeKeyFiles(cfg.RemoteDir(), map[string]string{
			"cacert.pem": cfg.TLS.CACert, "clientcert.pem": cfg.TLS.ClientCert, "clientkey.pem": cfg.TLS.ClientKey})
		if err != nil {
			return nil, "", err
		}
		opts := []dialers.TLSOption{dialers.UsePKIPath(dir)}
		if port := u.Port(); port != "" {
			opts = append(opts, dialers.UseTLSPort(port))
		}
		return dialers.NewTLS(u.Hostname(), opts...), "tls " + u.Host, nil
	}
	return nil, "", nil
}

// tlsRefusal names the certificate problem when a qemu+tls:// dial failed
// on one, "" otherwise. Either this CPI refused libvirtd's certificate, or
// libvirtd refused the CPI's: with TLS 1.3 the client's handshake ends
// before the server checks the client certificate, so that refusal shows
// as libvirtd's alert, go-libvirt's status-byte check or the connection
// closed right after the handshake.
func tlsRefusal(cfg config.Config, err error) string {
	if cfg.Transport() != "tls" {
		return ""
	}
	switch tlsrefusal.Of(err) {
	case tlsrefusal.ServerRefused:
		return "libvirtd's TLS certificate is not accepted (is it signed by tls.ca_cert, valid now, and does it name the host the uri dials?)"
	case tlsrefusal.ClientRefused:
		return "libvirtd refused the CPI's TLS client certificate (is tls.client_cert signed by a CA in libvirtd's ca_file, valid now, and its DN allowed by tls_allowed_dn_list?)"
	}
	return ""
}

// sshDialer authenticates with the key in dir only (never an ssh-agent or
// a password prompt a CPI process cannot answer) and checks the host key
// against dir's known_hosts, never accepting an unknown one, unless extra
// says otherwise.
func sshDialer(u *url.URL, dir string, extra ...dialers.SSHOption) socket.Dialer {
	opts := []dialers.SSHOption{
		dialers.UseKeyFile(filepath.Join(dir, "id")),
		dialers.UseKnownHostsFile(filepath.Join(dir, "known_hosts")),
		dialers.WithSSHAuthMethods((&dialers.SSHAuthMethods{}).PrivKey()),
	}
	if port := u.Port(); port != "" {
		opts = append(opts, dialers.UseSSHPort(port))
	}
	if user := u.User.Username(); user != "" {
		opts = append(opts, dialers.UseSSHUsername(user))
	}
	if sock := u.Query().Get("socket"); sock != "" {
		opts = append(opts, dialers.WithRemoteSocket(sock))
	}
	return dialers.NewSSH(u.Hostname(), append(opts, extra...)...)
}

// writeKeyFiles writes files (name -> content) with mode 0600 into a
// directory under parent named by their content, so parallel calls with
// the same keys share one directory and a change of keys never leaves a
// half-written mix: each file is renamed into place whole.
func writeKeyFiles(parent string, files map[string]string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"id", "known_hosts", "cacert.pem", "clientcert.pem", "clientkey.pem"} {
		fmt.Fprintf(h, "%s\x00%s\x00", name, files[name])
	}
	dir := filepath.Join(parent, hex.EncodeToString(h.Sum(nil))[:16])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("making the directory for remote libvirt keys '%s': %w", dir, err)
	}
	for name, content := range files {
		if err := writeFileWhole(filepath.Join(dir, name), content); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// writeFileWhole writes path through a temporary file and a rename, unless
// it already holds content.
func writeFileWhole(path, content string) error {
	if !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return nil
	}
	// The key files are ours alone, as CreateTemp made them before.
	if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing remote libvirt key file '%s': %w", path, err)
	}
	return nil
}
