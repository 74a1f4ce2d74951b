// Package config reads and validates cpi.json.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

// Defaults for keys an operator may leave out.
const (
	DefaultRuntime    = RuntimeLibvirt
	DefaultHypervisor = "auto"
	// DefaultStoreDir is root's; any other user gets DefaultUserStoreDir
	// under its home, so the default works for whoever runs the CPI.
	DefaultStoreDir     = "/var/lib/bosh-libvirt-cpi"
	DefaultUserStoreDir = "~/.local/state/bosh-libvirt-cpi"
	// DefaultPoolParent is where a system libvirtd keeps images; a pool the
	// CPI creates goes into <DefaultPoolParent>/<storage_pool> there.
	DefaultPoolParent    = "/var/lib/libvirt/images"
	DefaultStoragePool   = "bosh"
	DefaultNetwork       = "default"
	DefaultRebootTimeout = 60
	DefaultMachine       = "q35"
	DefaultHotplugSlots  = 24
)

// RuntimeLibvirt runs BOSH VMs through libvirt; the URI's driver part
// (qemu, ...) picks the hypervisor.
const RuntimeLibvirt = "libvirt"

// runtimes are the values key 'runtime' takes.
var runtimes = []string{RuntimeLibvirt, RuntimeDocker}

// Config is the whole of cpi.json.
type Config struct {
	// Runtime selects what runs the VMs: "libvirt" (the default) or
	// "docker" (section Docker; the libvirt keys are then not read).
	Runtime string `json:"runtime"`
	// Hypervisor is "kvm", "qemu" (TCG) or "auto": kvm when the connected
	// libvirt host offers it and its CPU has vmx or svm. Only the qemu
	// driver reads it.
	Hypervisor string `json:"hypervisor"`
	// URI is the libvirt connection URI; its driver part (qemu of
	// qemu+ssh://host/system) selects the hypervisor.
	URI string `json:"uri"`
	// StoreDir holds files the CPI owns: locks, console logs, agent settings.
	StoreDir string `json:"store_dir"`
	// StoragePool is the libvirt pool for stemcells and disks.
	StoragePool string `json:"storage_pool"`
	// PoolPath is the directory, on the libvirt host, of the pool the CPI
	// creates when StoragePool does not exist; libvirtd creates it.
	PoolPath string `json:"pool_path"`
	// Network is the libvirt network for BOSH networks that name none.
	Network string `json:"network"`
	// RebootTimeout is how many seconds reboot_vm waits for a graceful
	// shutdown before it resets the domain.
	RebootTimeout int `json:"reboot_timeout"`
	// DynamicIPWait is how many seconds create_vm waits for a dynamic
	// network's address to be known (0: one look, no wait).
	DynamicIPWait int `json:"dynamic_ip_wait"`
	// ManagedNetworkPool is the IPv4 CIDR create_network carves a managed
	// subnet from when the director gives netmask_bits and no range.
	ManagedNetworkPool string `json:"managed_network_pool"`
	// Machine is the QEMU machine type (q35 or pc).
	Machine string `json:"machine"`
	// HotplugSlots is how many spare PCIe root ports a q35 domain gets so
	// persistent disks can be hot-plugged.
	HotplugSlots int `json:"hotplug_slots"`
	// SSHPublicKey (an authorized_keys line) goes into every VM's meta-data
	// public-keys, where the agent takes vcap's SSH key from.
	SSHPublicKey string `json:"ssh_public_key"`
	// Agent is copied into every VM's agent settings.
	Agent Agent `json:"agent"`
	// SSH and TLS authenticate a remote libvirtd (qemu+ssh://, qemu+tls://).
	SSH *SSHAuth `json:"ssh,omitempty"`
	TLS *TLSAuth `json:"tls,omitempty"`
	// Docker is the docker runtime's section.
	Docker *Docker `json:"docker,omitempty"`
}

// Agent holds the settings every bosh-agent gets.
type Agent struct {
	Mbus      string     `json:"mbus"`
	NTP       []string   `json:"ntp"`
	Blobstore *Blobstore `json:"blobstore,omitempty"`
}

// Blobstore is the agent's blobstore (provider plus provider options).
type Blobstore struct {
	Provider string         `json:"provider"`
	Options  map[string]any `json:"options"`
}

// Load reads, defaults and validates the file at path.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading config file '%s': %w", path, err)
	}
	cfg, err := Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("config file '%s': %w", path, err)
	}
	return cfg, nil
}

// Parse decodes cpi.json, fills defaults and validates. Unknown keys are an
// error so that a typo never silently falls back to a default.
func Parse(raw []byte) (Config, error) {
	var cfg Config
	if err := checkOneObjectWithoutDuplicateKeys(raw); err != nil {
		return Config{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, describeDecodeError(err)
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// checkOneObjectWithoutDuplicateKeys refuses what encoding/json accepts
// silently: text after the object (a half-pasted second config) and a key
// given twice at any depth (where the last one would win unseen).
func checkOneObjectWithoutDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := walkValue(dec, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("not valid JSON: text after the configuration object")
	}
	return nil
}

// walkValue reads one JSON value from dec; path names where it is.
func walkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return fmt.Errorf("not valid JSON: %w", err)
			}
			key, _ := keyTok.(string)
			name := strings.TrimPrefix(path+"."+key, ".")
			if seen[key] {
				return fmt.Errorf("key '%s' is given twice", name)
			}
			seen[key] = true
			if err := walkValue(dec, name); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		for dec.More() {
			if err := walkValue(dec, path+"[]"); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	return nil
}

func describeDecodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Errorf("key '%s': expected %s, got JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return fmt.Errorf("unknown key %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	return fmt.Errorf("not valid JSON: %w", err)
}

func (c *Config) applyDefaults() {
	if c.Runtime == "" {
		c.Runtime = DefaultRuntime
	}
	if c.Hypervisor == "" {
		c.Hypervisor = DefaultHypervisor
	}
	if c.StoreDir == "" {
		c.StoreDir = DefaultStoreDir
		if os.Geteuid() != 0 {
			c.StoreDir = DefaultUserStoreDir
		}
	}
	c.StoreDir = expandHome(c.StoreDir)
	if c.StoragePool == "" {
		c.StoragePool = DefaultStoragePool
	}
	if c.Network == "" {
		c.Network = DefaultNetwork
	}
	if c.RebootTimeout == 0 {
		c.RebootTimeout = DefaultRebootTimeout
	}
	if c.Machine == "" {
		c.Machine = DefaultMachine
	}
	if c.HotplugSlots == 0 {
		c.HotplugSlots = DefaultHotplugSlots
	}
	if c.ManagedNetworkPool == "" {
		c.ManagedNetworkPool = network.DefaultManagedPool
	}
	if c.URI == "" {
		c.URI = "qemu:///system"
	}
	docker := c.DockerSection()
	c.Docker = &docker
}

// defaultPoolPath: a session daemon runs QEMU as the CPI's own user, so the
// pool lives in store_dir; a system daemon's QEMU user must reach the pool,
// which a home directory usually forbids, so it goes where libvirt keeps
// images on that host (also right when the host is another machine).
func (c Config) defaultPoolPath() string {
	if u, err := url.Parse(c.URI); err == nil && u.Path == "/session" {
		return filepath.Join(c.StoreDir, "pool")
	}
	return filepath.Join(DefaultPoolParent, c.StoragePool)
}

// expandHome turns a leading "~/" into the home of the user running the
// CPI, so one job property serves whoever runs `bosh create-env`.
func expandHome(path string) string {
	if !strings.HasPrefix(path, "~/") {
		return path
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return path // Validate reports it as not absolute
	}
	return filepath.Join(home, path[2:])
}

// Validate names the key and what is wrong with it.
func (c Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if !slices.Contains(runtimes, c.Runtime) {
		add("key 'runtime': must be one of %s; got '%s'", strings.Join(runtimes, ", "), c.Runtime)
	}
	switch c.Hypervisor {
	case "kvm", "qemu", "auto":
	default:
		add("key 'hypervisor': must be one of kvm, qemu, auto; got '%s'", c.Hypervisor)
	}
	if u, err := url.Parse(c.URI); err != nil || u.Scheme == "" {
		add("key 'uri': '%s' is not a libvirt URI such as qemu:///system", RedactURI(c.URI))
	}
	if !filepath.IsAbs(c.StoreDir) {
		add("key 'store_dir': must be an absolute path; got '%s'", c.StoreDir)
	}
	if c.PoolPath != "" && !filepath.IsAbs(expandHome(c.PoolPath)) {
		add("key 'pool_path': must be an absolute path; got '%s'", c.PoolPath)
	}
	if !validLibvirtName(c.StoragePool) {
		add("key 'storage_pool': '%s' is not a valid libvirt pool name", c.StoragePool)
	}
	if !validLibvirtName(c.Network) {
		add("key 'network': '%s' is not a valid libvirt network name", c.Network)
	}
	if c.DynamicIPWait < 0 || c.DynamicIPWait > 600 {
		add("key 'dynamic_ip_wait': must be between 0 and 600 seconds; got %d", c.DynamicIPWait)
	}
	if _, err := network.ParsePool(c.ManagedNetworkPool); err != nil {
		add("key 'managed_network_pool': %v", err)
	}
	if c.RebootTimeout < 0 {
		add("key 'reboot_timeout': must be a positive number of seconds; got %d", c.RebootTimeout)
	}
	switch c.Machine {
	case "q35", "pc":
	default:
		add("key 'machine': must be q35 or pc; got '%s'", c.Machine)
	}
	if c.HotplugSlots < 0 || c.HotplugSlots > 200 {
		add("key 'hotplug_slots': must be between 1 and 200; got %d", c.HotplugSlots)
	}
	if c.SSHPublicKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.SSHPublicKey)); err != nil {
			add("key 'ssh_public_key': not an SSH public key in authorized_keys form: %v", err)
		}
	}
	if c.Agent.Mbus == "" {
		add("key 'agent.mbus': must be set (e.g. https://mbus:PASSWORD@0.0.0.0:6868)")
	} else if u, err := url.Parse(c.Agent.Mbus); err != nil || u.Scheme == "" {
		add("key 'agent.mbus': not a URL")
	}
	if c.Agent.Blobstore != nil && c.Agent.Blobstore.Provider == "" {
		add("key 'agent.blobstore.provider': must be set when agent.blobstore is given")
	}
	problems = append(problems, c.remoteProblems()...)
	problems = append(problems, c.dockerProblems()...)
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func validLibvirtName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\\\x00 ")
}

// LockDir is where cross-process lock files live.
func (c Config) LockDir() string { return filepath.Join(c.StoreDir, "locks") }

// ConsoleDir is where each VM's serial console is written.
func (c Config) ConsoleDir() string { return filepath.Join(c.StoreDir, "console") }

// VMDir is where per-VM files (agent settings) live.
func (c Config) VMDir() string { return filepath.Join(c.StoreDir, "vms") }

// PoolDir is the directory of the storage pool when the CPI creates it:
// pool_path, else the default for the URI (kept out of PoolPath so that a
// storage_pool or uri from the call's context moves the default with it).
func (c Config) PoolDir() string {
	if c.PoolPath != "" {
		return expandHome(c.PoolPath)
	}
	return c.defaultPoolPath()
}

// overridableKeys are the keys a director CPI config may set per CPI; the
// director merges those properties into every call's context. store_dir and
// agent stay with the installed job.
var overridableKeys = map[string]bool{
	"runtime": true, "hypervisor": true, "uri": true, "storage_pool": true, "pool_path": true, "network": true,
	"reboot_timeout": true, "dynamic_ip_wait": true, "managed_network_pool": true, "machine": true, "hotplug_slots": true,
	// Each host of a multi-host director has its own uri and so its own keys.
	"ssh": true, "tls": true,
	// A host running Docker instead names its daemon.
	"docker": true,
}

// jobOnlyKeys are cpi.json keys a director CPI config must not set: they
// describe the installation (where its files are, what every agent gets),
// and ignoring them silently would hide the operator's mistake.
var jobOnlyKeys = map[string]bool{"store_dir": true, "agent": true, "ssh_public_key": true}

// WithContext returns c with the overridable keys found at the top level of
// a call's context applied, validated. Other context keys (director_uuid,
// request_id, vm, ...) are the director's own and are ignored.
func (c Config) WithContext(context map[string]json.RawMessage) (Config, error) {
	overrides := map[string]json.RawMessage{}
	for k, v := range context {
		switch {
		case overridableKeys[k]:
			overrides[k] = v
		case jobOnlyKeys[k]:
			return Config{}, fmt.Errorf("CPI config properties in the call's context: key '%s' cannot be set per CPI: it belongs to the installed job (set it in the libvirt_cpi job's properties)", k)
		}
	}
	if len(overrides) == 0 {
		return c, nil
	}
	base, err := json.Marshal(c)
	if err != nil {
		return Config{}, err
	}
	merged := map[string]json.RawMessage{}
	if err := json.Unmarshal(base, &merged); err != nil {
		return Config{}, err
	}
	for k, v := range overrides {
		merged[k] = v
	}
	raw, err := json.Marshal(merged)
	if err != nil {
		return Config{}, err
	}
	out, err := Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("CPI config properties in the call's context: %w", err)
	}
	return out, nil
}
