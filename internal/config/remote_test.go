package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// testSSHAuth is a fresh key pair's private key and a known_hosts line.
func testSSHAuth(t *testing.T) SSHAuth {
	t.Helper()
	private, public, err := devenv.NewSSHKey()
	if err != nil {
		t.Fatal(err)
	}
	return SSHAuth{PrivateKey: private, KnownHosts: devenv.KnownHostsLine("127.0.0.1:2222", public)}
}

// testTLSAuth is a self-signed certificate serving as CA and client.
func testTLSAuth(t *testing.T) TLSAuth {
	t.Helper()
	cert, key, err := devenv.NewTLSPair()
	if err != nil {
		t.Fatal(err)
	}
	return TLSAuth{CACert: cert, ClientCert: cert, ClientKey: key}
}

func TestRemoteAuthKeys(t *testing.T) {
	good := testSSHAuth(t)
	goodTLS := testTLSAuth(t)
	other := testTLSAuth(t)
	cases := []struct {
		name    string
		uri     string
		ssh     *SSHAuth
		tls     *TLSAuth
		wantErr string // "" = accepted
	}{
		{"ssh keys for an ssh uri", "qemu+ssh://root@127.0.0.1:2222/system", &good, nil, ""},
		{"no keys for an ssh uri (go-libvirt's own defaults)", "qemu+ssh://root@h/system", nil, nil, ""},
		{"ssh keys for a local uri", "qemu:///system", &good, nil, "key 'ssh': only for a qemu+ssh:// uri"},
		{"a key that is not one", "qemu+ssh://h/system", &SSHAuth{PrivateKey: "nope", KnownHosts: good.KnownHosts}, nil, "key 'ssh.private_key'"},
		{"no known_hosts", "qemu+ssh://h/system", &SSHAuth{PrivateKey: good.PrivateKey}, nil, "key 'ssh.known_hosts'"},
		{"no known_hosts, the check switched off", "qemu+ssh://h/system", &SSHAuth{PrivateKey: good.PrivateKey, InsecureIgnoreHostKey: true}, nil, ""},
		{"known_hosts of comments only", "qemu+ssh://h/system", &SSHAuth{PrivateKey: good.PrivateKey, KnownHosts: "# none\n"}, nil, "key 'ssh.known_hosts'"},
		{"tls keys for a tls uri", "qemu+tls://h/system", nil, &goodTLS, ""},
		{"tls keys for an ssh uri", "qemu+ssh://h/system", nil, &goodTLS, "key 'tls': only for a qemu+tls:// uri"},
		{"no ca", "qemu+tls://h/system", nil, &TLSAuth{ClientCert: goodTLS.ClientCert, ClientKey: goodTLS.ClientKey}, "key 'tls.ca_cert'"},
		{"key of another cert", "qemu+tls://h/system", nil, &TLSAuth{CACert: goodTLS.CACert, ClientCert: goodTLS.ClientCert, ClientKey: other.ClientKey}, "'tls.client_key'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(map[string]any{"uri": tc.uri, "ssh": tc.ssh, "tls": tc.tls, "agent": map[string]any{"mbus": "https://h"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(raw)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("err = %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// A multi-host director gives each host its uri and that host's keys in
// the call's context.
func TestContextCarriesAHostsURIAndKeys(t *testing.T) {
	base, err := Parse([]byte(`{"agent":{"mbus":"https://h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	auth := testSSHAuth(t)
	rawAuth, _ := json.Marshal(auth)
	got, err := base.WithContext(map[string]json.RawMessage{
		"uri": json.RawMessage(`"qemu+ssh://root@127.0.0.1:2222/system"`), "ssh": rawAuth})
	if err != nil {
		t.Fatal(err)
	}
	if got.SSH == nil || got.SSH.KnownHosts != auth.KnownHosts || got.Transport() != "ssh" {
		t.Errorf("context keys not applied: %+v", got)
	}
}

func TestRedactURI(t *testing.T) {
	for uri, want := range map[string]string{
		"qemu:///system":                      "qemu:///system",
		"qemu+ssh://root:s3cret@h:22/system":  "qemu+ssh://root:xxxxx@h:22/system",
		"qemu+ssh://root:s3cr%t@h/system":     "qemu+ssh://root:xxxxx@h/system", // the parser refuses %t
		"qemu+tcp://h/system?socket=/run/x@y": "qemu+tcp://h/system?socket=/run/x@y",
	} {
		if got := RedactURI(uri); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", uri, got, want)
		}
	}
	_, err := Parse([]byte(`{"uri":"qemu+ssh://root:s3cr%t@h/system","agent":{"mbus":"https://h"}}`))
	if err == nil || strings.Contains(err.Error(), "s3cr") {
		t.Errorf("a refused uri's password reaches the message: %v", err)
	}
}
