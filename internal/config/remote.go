package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// SSHAuth authenticates a qemu+ssh:// URI. Both parts come as text (BOSH
// job properties or the director's CPI config), never as paths on the
// director's disk; the CPI writes them to files of its own in store_dir.
type SSHAuth struct {
	// PrivateKey is the CPI's private key (PEM or OpenSSH form).
	PrivateKey string `json:"private_key"`
	// KnownHosts holds the libvirt host's key lines (ssh-keyscan output):
	// the host key is checked, never accepted on first use.
	KnownHosts string `json:"known_hosts"`
	// InsecureIgnoreHostKey skips the host key check (a throwaway lab):
	// anyone between the CPI and the host can then take its key's place.
	// Each connection logs a warning.
	InsecureIgnoreHostKey bool `json:"insecure_ignore_host_key"`
}

// TLSAuth authenticates a qemu+tls:// URI with PEM text: the CA that
// signed libvirtd's certificate and the CPI's client certificate and key.
type TLSAuth struct {
	CACert     string `json:"ca_cert"`
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key"`
}

// Transport is the URI's transport: "ssh" for qemu+ssh://, "tls" for
// qemu+tls://, "" for a plain local URI.
func (c Config) Transport() string {
	u, err := url.Parse(c.URI)
	if err != nil {
		return ""
	}
	if _, transport, ok := strings.Cut(u.Scheme, "+"); ok {
		return transport
	}
	return ""
}

// RedactURI is uri fit for a message: a password in it (qemu+ssh://u:p@h)
// is replaced, also in a URI the parser refuses.
func RedactURI(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		return u.Redacted()
	}
	scheme, rest, found := strings.Cut(uri, "://")
	if !found {
		return uri
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
			return scheme + "://" + user + ":xxxxx" + rest[at:]
		}
	}
	return uri
}

// RemoteDir is where the key material of remote URIs is written.
func (c Config) RemoteDir() string { return filepath.Join(c.StoreDir, "remote") }

// remoteProblems names what is wrong with the ssh and tls keys for this URI.
func (c Config) remoteProblems() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	transport := c.Transport()
	if c.SSH != nil {
		if transport != "ssh" {
			add("key 'ssh': only for a qemu+ssh:// uri; uri is '%s'", RedactURI(c.URI))
		}
		if _, err := ssh.ParsePrivateKey([]byte(c.SSH.PrivateKey)); err != nil {
			add("key 'ssh.private_key': not an unencrypted SSH private key: %v", err)
		}
		if !c.SSH.InsecureIgnoreHostKey && !hasKnownHostLine(c.SSH.KnownHosts) {
			add("key 'ssh.known_hosts': must hold the libvirt host's key lines (ssh-keyscan -p PORT HOST prints them), unless ssh.insecure_ignore_host_key is true")
		}
	}
	if c.TLS != nil {
		if transport != "tls" {
			add("key 'tls': only for a qemu+tls:// uri; uri is '%s'", RedactURI(c.URI))
		}
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(c.TLS.CACert)) {
			add("key 'tls.ca_cert': no PEM certificate in it")
		}
		if _, err := tls.X509KeyPair([]byte(c.TLS.ClientCert), []byte(c.TLS.ClientKey)); err != nil {
			add("keys 'tls.client_cert' and 'tls.client_key': not a matching PEM certificate and key: %v", err)
		}
	}
	return problems
}

// hasKnownHostLine tells whether text holds a known_hosts entry (comments
// and blank lines aside).
func hasKnownHostLine(text string) bool {
	_, _, _, _, _, err := ssh.ParseKnownHosts([]byte(text))
	return err == nil
}
