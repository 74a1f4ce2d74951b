package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// RuntimeDocker runs BOSH VMs as containers of a Docker daemon, from
// warden stemcells.
const RuntimeDocker = "docker"

// Defaults of the docker section.
const (
	DefaultDockerHost    = "unix:///var/run/docker.sock"
	DefaultDockerNetwork = "bridge"
)

// Docker is the "docker" section: which daemon and how to reach it. It is
// read only when runtime is docker (a job may carry it for a CPI config
// that switches runtime per call), but always validated.
type Docker struct {
	// Host is unix:///path (the CPI on the Docker host) or tcp://host:port.
	Host string `json:"host"`
	// TLS authenticates a tcp:// daemon with PEM text; nil means plain.
	TLS *TLSAuth `json:"tls,omitempty"`
	// Network is the Docker network of BOSH networks whose cloud_properties
	// name none.
	Network string `json:"network"`
}

// DockerSection is the docker section with its defaults filled in (Parse
// has filled them already; a Config made in code may lack them).
func (c Config) DockerSection() Docker {
	d := Docker{}
	if c.Docker != nil {
		d = *c.Docker
	}
	if d.Host == "" {
		d.Host = DefaultDockerHost
	}
	if d.Network == "" {
		d.Network = DefaultDockerNetwork
	}
	return d
}

// DefaultVMNetwork is the network of BOSH networks whose cloud_properties
// name none, in the runtime's own terms.
func (c Config) DefaultVMNetwork() string {
	if c.Runtime == RuntimeDocker {
		return c.DockerSection().Network
	}
	return c.Network
}

// DockerStoreDir holds the Docker runtime's files (disk images, snapshots,
// per-VM mount directories), apart from the CPI's own.
func (c Config) DockerStoreDir() string { return filepath.Join(c.StoreDir, "docker") }

// dockerProblems names what is wrong with the docker section.
func (c Config) dockerProblems() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	d := c.DockerSection()
	u, err := url.Parse(d.Host)
	switch {
	case err != nil:
		add("key 'docker.host': '%s' is not a URL such as %s or tcp://HOST:2376", d.Host, DefaultDockerHost)
	case u.Scheme == "unix":
		if !filepath.IsAbs(u.Path) || u.Host != "" {
			add("key 'docker.host': '%s' must be unix:///ABSOLUTE/PATH", d.Host)
		}
	case u.Scheme == "tcp":
		if u.Hostname() == "" || u.Port() == "" || strings.Trim(u.Path, "/") != "" {
			add("key 'docker.host': '%s' must be tcp://HOST:PORT", d.Host)
		}
	default:
		add("key 'docker.host': must be unix:///PATH or tcp://HOST:PORT; got '%s'", d.Host)
	}
	if strings.ContainsAny(d.Network, "/\\\x00 ") {
		add("key 'docker.network': '%s' is not a valid Docker network name", d.Network)
	}
	if d.TLS != nil {
		if u != nil && u.Scheme != "tcp" {
			add("key 'docker.tls': only for a tcp:// docker.host; host is '%s'", d.Host)
		}
		if d.TLS.CACert != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(d.TLS.CACert)) {
			add("key 'docker.tls.ca_cert': no PEM certificate in it")
		}
		if d.TLS.ClientCert != "" || d.TLS.ClientKey != "" {
			if _, err := tls.X509KeyPair([]byte(d.TLS.ClientCert), []byte(d.TLS.ClientKey)); err != nil {
				add("keys 'docker.tls.client_cert' and 'docker.tls.client_key': not a matching PEM certificate and key: %v", err)
			}
		}
	}
	return problems
}
