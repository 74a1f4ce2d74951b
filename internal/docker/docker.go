// Package docker runs BOSH VMs as Docker containers: stemcells are images
// imported from a warden rootfs tgz, VMs are containers, persistent disks
// are ext4 filesystem images loop-mounted into a per-container shared
// directory (on a remote tcp:// host: volumes, mounted by recreating the
// container). It is the only package that imports the Docker client.
//
// What it needs from the host: a Docker daemon (API 1.41 or later) and,
// for disks mounted without recreating the container, the CPI running as
// root on the Docker host itself (see disks.go).
package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/atomicfile"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/tlsrefusal"
)

// DefaultHost is the local daemon's socket.
const DefaultHost = "unix:///var/run/docker.sock"

// DefaultNetwork is the network a NIC joins when its BOSH network names none.
const DefaultNetwork = "bridge"

// DefaultStoreDir holds disk images and per-VM state unless told otherwise.
const DefaultStoreDir = "/var/vcap/store/bosh-libvirt-cpi-docker"

// Config is the runtime's section of cpi.json ("docker": {...}).
type Config struct {
	// Host is the daemon: unix:///path or tcp://host:port.
	Host string `json:"host"`
	TLS  TLS    `json:"tls"`
	// Network is the Docker network of NICs whose cloud_properties name none.
	Network string `json:"network"`
	// StoreDir holds disk images, snapshots and per-VM directories. It must
	// be the same path on the Docker host (the CPI runs there for disks).
	StoreDir string `json:"store_dir"`
	// NamePrefix starts the name of every container, image tag, volume and
	// network this runtime makes (tests use a per-run prefix).
	NamePrefix string `json:"name_prefix"`
	// StopTimeout is how long a container gets to stop before it is killed.
	StopTimeout time.Duration `json:"-"`
}

// TLS holds PEM strings for a tcp:// daemon; all empty means plain.
type TLS struct {
	CACert     string `json:"ca_cert"`
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key"`
}

// withDefaults fills what the operator left out.
func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Network == "" {
		c.Network = DefaultNetwork
	}
	if c.StoreDir == "" {
		c.StoreDir = DefaultStoreDir
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	return c
}

// Labels mark what this runtime made; nothing without LabelOwner is ever
// touched.
const (
	LabelOwner = "io.bosh-libvirt-cpi.owner"
	OwnerValue = "bosh-libvirt-cpi"
	LabelCID   = "io.bosh-libvirt-cpi.cid"
	LabelKind  = "io.bosh-libvirt-cpi.kind"
	// LabelStemcell on a container names the stemcell CID it runs.
	LabelStemcell = "io.bosh-libvirt-cpi.stemcell"
	// LabelInit on a stemcell image says what its /sbin/init is:
	// vm.InitSystemd or vm.InitPlain, the values VM cloud_properties'
	// container.init overrides it with (see stemcells.go).
	LabelInit = "io.bosh-libvirt-cpi.init"
)

// Runtime is one connection to a Docker daemon, for one CPI call.
type Runtime struct {
	cfg    Config
	api    *client.Client
	log    *slog.Logger
	local  bool // the daemon is on this machine (unix socket)
	apiVer string
	// tamperSettings is set by tests only, to prove the guest-truth checks
	// can fail: it gives the settings written into a new container in
	// place of the real ones (nil: no settings file at all). CreateVM
	// still returns the real settings.
	tamperSettings func(agentsettings.Settings) *agentsettings.Settings
	// sweepAge, set by tests only, replaces killedImportAge.
	sweepAge *time.Duration
}

// Open connects and negotiates the API version. ErrUnreachable when the
// daemon does not answer.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Runtime, error) {
	cfg = cfg.withDefaults()
	opts := []client.Opt{}
	if cfg.TLS != (TLS{}) {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}))
	}
	opts = append(opts, client.WithHost(cfg.Host), client.WithAPIVersionNegotiation())
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker host '%s': %w", cfg.Host, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := api.Ping(pctx); err != nil {
		api.Close()
		if problem := tlsProblem(cfg, err); problem != "" {
			return nil, fmt.Errorf("docker daemon at '%s': %s: %v", cfg.Host, problem, err)
		}
		return nil, unreachable(cfg.Host, err)
	}
	api.NegotiateAPIVersion(pctx)
	r := &Runtime{cfg: cfg, api: api, log: logger, local: strings.HasPrefix(cfg.Host, "unix://"), apiVer: api.ClientVersion()}
	logger.Debug("docker connected", "host", cfg.Host, "api", r.apiVer)
	return r, nil
}

// Close ends the connection.
func (r *Runtime) Close() error { return r.api.Close() }

// APIVersion is the negotiated daemon API version.
func (r *Runtime) APIVersion() string { return r.apiVer }

func tlsConfig(t TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(t.CACert)) {
			return nil, errors.New("docker tls.ca_cert: no PEM certificate in it")
		}
		tc.RootCAs = pool
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		return nil, errors.New("docker tls: client_cert and client_key go together")
	}
	if t.ClientCert != "" {
		pair, err := tls.X509KeyPair([]byte(t.ClientCert), []byte(t.ClientKey))
		if err != nil {
			// The key's bytes are never in the message.
			return nil, errors.New("docker tls: client_cert/client_key are not a matching PEM pair")
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// tlsProblem names a certificate refusal of a TLS connection to the
// daemon, "" for any other failure. A refusal is no unreachable daemon:
// retrying the same certificates cannot help.
func tlsProblem(cfg Config, err error) string {
	if cfg.TLS == (TLS{}) {
		return ""
	}
	switch tlsrefusal.Of(err) {
	case tlsrefusal.ServerRefused:
		return "its TLS certificate is not accepted (is it signed by docker.tls.ca_cert, valid now, and does it name the host docker.host dials?)"
	case tlsrefusal.ClientRefused:
		return "it refused the CPI's TLS client certificate (is docker.tls.client_cert signed by a CA in dockerd's --tlscacert, and valid now?)"
	}
	return ""
}

// unreachableError says which daemon did not answer; it is
// cpierr.ErrUnreachable for errors.Is.
type unreachableError struct {
	host  string
	cause error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("docker daemon at '%s' unreachable: %v", e.host, e.cause)
}
func (e *unreachableError) Unwrap() error        { return e.cause }
func (e *unreachableError) Is(target error) bool { return target == cpierr.ErrUnreachable }

func unreachable(host string, err error) error { return &unreachableError{host: host, cause: err} }

// fail wraps a Docker API error with what was being done, mapping the
// daemon's answer onto the cpierr sentinels.
func (r *Runtime) fail(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch {
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: %w", what, unreachable(r.cfg.Host, err))
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %v", what, cpierr.ErrNotFound, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%s: %w: %v", what, cpierr.ErrInUse, err)
	case strings.Contains(err.Error(), "no space left on device"):
		return fmt.Errorf("%s: %w: %v", what, cpierr.ErrNoSpace, err)
	}
	return fmt.Errorf("%s: docker: %w", what, err)
}

func (r *Runtime) name(cid string) string { return r.cfg.NamePrefix + cid }

func (r *Runtime) labels(kind, cid string) map[string]string {
	return map[string]string{LabelOwner: OwnerValue, LabelKind: kind, LabelCID: cid}
}

func ours(labels map[string]string) bool { return labels[LabelOwner] == OwnerValue }

// vmDir is a VM's directory in the store: its shared disk mount point and
// its metadata.
func (r *Runtime) vmDir(cid string) string { return filepath.Join(r.cfg.StoreDir, "vms", cid) }

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}

// undo runs cleanups newest first; each failure is logged, never hidden
// behind the error that made the undo necessary.
type undo struct {
	log   *slog.Logger
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func(context.Context) error
}

func (u *undo) add(what string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what, fn})
}

func (u *undo) run() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i].fn(ctx); err != nil {
			u.log.Error("undo failed", "step", u.steps[i].what, "err", err)
		}
	}
}
