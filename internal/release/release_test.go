package release

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

const testMbus = "https://mbus:secret@0.0.0.0:6868"

// TestCPIJSONTemplateRendersWhatConfigParses renders cpi.json.erb with
// property sets a deployment really uses and feeds the result to
// internal/config, so the job and the binary cannot drift apart.
func TestCPIJSONTemplateRendersWhatConfigParses(t *testing.T) {
	testCert, testKey, err := devenv.NewTLSPair()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		properties map[string]any
		want       config.Config
	}{
		{
			name:       "spec defaults equal config defaults",
			properties: map[string]any{"agent": map[string]any{"mbus": testMbus}},
			want:       withAgent(config.Agent{Mbus: testMbus, NTP: []string{}}),
		},
		{
			name: "create-env: every libvirt_cpi key and the local blobstore bosh.yml sets",
			properties: map[string]any{
				"libvirt_cpi": map[string]any{
					"runtime": "libvirt", "hypervisor": "qemu", "uri": "qemu+tcp://10.0.0.5/system",
					"store_dir": "/srv/bosh-cpi", "storage_pool": "bosh-ssd", "network": "bosh-net",
					"reboot_timeout": 120, "machine": "pc", "hotplug_slots": 8, "managed_network_pool": "10.200.0.0/20",
				},
				"agent":     map[string]any{"mbus": testMbus},
				"ntp":       []string{"time1.google.com", "time2.google.com"},
				"blobstore": map[string]any{"provider": "local", "path": "/var/vcap/micro_bosh/data/cache"},
			},
			want: config.Config{
				Runtime: "libvirt", Hypervisor: "qemu", URI: "qemu+tcp://10.0.0.5/system", StoreDir: "/srv/bosh-cpi",
				StoragePool: "bosh-ssd", Network: "bosh-net", RebootTimeout: 120, Machine: "pc", HotplugSlots: 8,
				ManagedNetworkPool: "10.200.0.0/20",
				Agent: config.Agent{
					Mbus: testMbus,
					NTP:  []string{"time1.google.com", "time2.google.com"},
					Blobstore: &config.Blobstore{Provider: "local", Options: map[string]any{
						"blobstore_path": "/var/vcap/micro_bosh/data/cache",
					}},
				},
			},
		},
		{
			name: "director: dav blobstore with TLS, agents reach it at their own address",
			properties: map[string]any{
				"agent": map[string]any{
					"mbus":      "nats://10.0.0.6:4222",
					"blobstore": map[string]any{"address": "10.0.0.7"},
				},
				"blobstore": map[string]any{
					"provider": "dav", "address": "10.0.0.6", "port": 25250,
					"agent": map[string]any{"user": "agent", "password": "agent-pw"},
					"tls":   map[string]any{"cert": map[string]any{"ca": "-----BEGIN CERTIFICATE-----"}},
				},
			},
			want: withAgent(config.Agent{
				Mbus: "nats://10.0.0.6:4222", NTP: []string{},
				Blobstore: &config.Blobstore{Provider: "dav", Options: map[string]any{
					"endpoint": "https://10.0.0.7:25250", "user": "agent", "password": "agent-pw",
					"tls": map[string]any{"cert": map[string]any{"ca": "-----BEGIN CERTIFICATE-----"}},
				}},
			}),
		},
		{
			name: "dav blobstore without TLS or credentials: plain http, default port",
			properties: map[string]any{
				"agent":     map[string]any{"mbus": testMbus},
				"blobstore": map[string]any{"provider": "dav", "address": "10.0.0.6"},
			},
			want: withAgent(config.Agent{
				Mbus: testMbus, NTP: []string{},
				Blobstore: &config.Blobstore{Provider: "dav", Options: map[string]any{
					"endpoint": "http://10.0.0.6:25250",
				}},
			}),
		},
		{
			name: "s3 blobstore: agent keys win over the director's",
			properties: map[string]any{
				"agent": map[string]any{
					"mbus":      testMbus,
					"blobstore": map[string]any{"access_key_id": "agent-key", "secret_access_key": "agent-secret"},
				},
				"blobstore": map[string]any{
					"provider": "s3", "bucket_name": "bosh-blobs", "credentials_source": "static",
					"access_key_id": "director-key", "secret_access_key": "director-secret",
					"s3_region": "eu-west-1", "host": "minio.internal", "s3_port": 9000, "use_ssl": false,
					"ssl_verify_peer": false, "s3_force_path_style": true, "s3_signature_version": "4",
				},
			},
			want: withAgent(config.Agent{
				Mbus: testMbus, NTP: []string{},
				Blobstore: &config.Blobstore{Provider: "s3", Options: map[string]any{
					"bucket_name": "bosh-blobs", "credentials_source": "static",
					"access_key_id": "agent-key", "secret_access_key": "agent-secret",
					"region": "eu-west-1", "host": "minio.internal", "port": float64(9000), "use_ssl": false,
					"ssl_verify_peer": false, "s3_force_path_style": true, "signature_version": "4",
				}},
			}),
		},
		{
			name: "gcs blobstore",
			properties: map[string]any{
				"agent": map[string]any{"mbus": testMbus},
				"blobstore": map[string]any{
					"provider": "gcs", "bucket_name": "bosh-blobs", "credentials_source": "static", "json_key": "{}",
				},
			},
			want: withAgent(config.Agent{
				Mbus: testMbus, NTP: []string{},
				Blobstore: &config.Blobstore{Provider: "gcs", Options: map[string]any{
					"bucket_name": "bosh-blobs", "credentials_source": "static", "json_key": "{}",
				}},
			}),
		},
	}
	tests = append(tests, struct {
		name       string
		properties map[string]any
		want       config.Config
	}{
		name: "docker runtime on a remote daemon with TLS",
		properties: map[string]any{
			"agent": map[string]any{"mbus": testMbus},
			"libvirt_cpi": map[string]any{"runtime": "docker", "docker": map[string]any{
				"host": "tcp://10.0.0.5:2376", "network": "bosh",
				"tls": map[string]any{"ca_cert": testCert, "client_cert": testCert, "client_key": testKey},
			}},
		},
		want: func() config.Config {
			c := withAgent(config.Agent{Mbus: testMbus, NTP: []string{}})
			c.Runtime = "docker"
			c.Docker = &config.Docker{Host: "tcp://10.0.0.5:2376", Network: "bosh",
				TLS: &config.TLSAuth{CACert: testCert, ClientCert: testCert, ClientKey: testKey}}
			return c
		}(),
	})
	for _, tt := range tests {
		if tt.want.Docker == nil {
			// Every rendered cpi.json carries the docker section's defaults.
			tt.want.Docker = &config.Docker{Host: config.DefaultDockerHost, Network: config.DefaultDockerNetwork}
		}
		t.Run(tt.name, func(t *testing.T) {
			if got := renderedConfig(t, tt.properties); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parsed config differs\n got: %#v\nwant: %#v", got, tt.want)
			}
		})
	}
}

// A remote libvirt host over ssh: the key and known_hosts properties
// reach config as text.
func TestCPIJSONTemplateRendersRemoteSSHKeys(t *testing.T) {
	private, public, err := devenv.NewSSHKey()
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := devenv.KnownHostsLine("10.0.0.5:22", public)
	got := renderedConfig(t, map[string]any{
		"agent": map[string]any{"mbus": testMbus},
		"libvirt_cpi": map[string]any{
			"uri": "qemu+ssh://root@10.0.0.5/system",
			"ssh": map[string]any{"private_key": private, "known_hosts": knownHosts},
		},
	})
	if got.SSH == nil || got.SSH.PrivateKey != private || got.SSH.KnownHosts != knownHosts || got.SSH.InsecureIgnoreHostKey || got.TLS != nil {
		t.Errorf("rendered ssh keys = %+v, tls = %+v", got.SSH, got.TLS)
	}
	// A lab that switches the host key check off gives no known_hosts.
	lab := renderedConfig(t, map[string]any{
		"agent": map[string]any{"mbus": testMbus},
		"libvirt_cpi": map[string]any{
			"uri": "qemu+ssh://root@10.0.0.5/system",
			"ssh": map[string]any{"private_key": private, "insecure_ignore_host_key": true},
		},
	})
	if lab.SSH == nil || lab.SSH.PrivateKey != private || lab.SSH.KnownHosts != "" || !lab.SSH.InsecureIgnoreHostKey {
		t.Errorf("rendered lab ssh keys = %+v", lab.SSH)
	}
}

// directorStoreDir is the job's default store_dir: on a director the CPI
// runs as vcap, which may write only below /var/vcap/data/<job> and
// /var/vcap/sys/{log,run}/<job> (bpm).
const directorStoreDir = "/var/vcap/data/libvirt_cpi"

func TestDirectorStoreDirIsWritableByVcap(t *testing.T) {
	rendered, err := renderTemplate(t, "cpi.json.erb", map[string]any{"agent": map[string]any{"mbus": testMbus}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(rendered))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.StoreDir, "/var/vcap/data/libvirt_cpi") && !strings.HasPrefix(cfg.StoreDir, "/var/vcap/sys/run/libvirt_cpi") {
		t.Fatalf("a director renders store_dir %q; the CPI runs as vcap there and can write only below /var/vcap/data/libvirt_cpi or /var/vcap/sys/run/libvirt_cpi", cfg.StoreDir)
	}
	preStart, err := renderTemplate(t, "pre-start.erb", map[string]any{"agent": map[string]any{"mbus": testMbus}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(preStart, "chown vcap:vcap \"$store_dir\"") || !strings.Contains(preStart, "store_dir='"+cfg.StoreDir+"'") {
		t.Fatalf("pre-start does not give %s to vcap:\n%s", cfg.StoreDir, preStart)
	}
}

// withAgent is a config with every default and the given agent settings.
func withAgent(agent config.Agent) config.Config {
	return config.Config{
		Runtime: config.DefaultRuntime, Hypervisor: config.DefaultHypervisor, URI: "qemu:///system", StoreDir: directorStoreDir,
		StoragePool: config.DefaultStoragePool, Network: config.DefaultNetwork,
		RebootTimeout: config.DefaultRebootTimeout, Machine: config.DefaultMachine,
		HotplugSlots: config.DefaultHotplugSlots, ManagedNetworkPool: network.DefaultManagedPool, Agent: agent,
	}
}

// TestCPIJSONTemplateRefusesIncompleteProperties: a deployment that lacks
// what the CPI needs fails when the job is rendered, before any VM exists.
func TestCPIJSONTemplateRefusesIncompleteProperties(t *testing.T) {
	tests := []struct {
		name       string
		properties map[string]any
		wantErr    string
	}{
		{
			name:       "no agent.mbus",
			properties: map[string]any{},
			wantErr:    "Can't find property 'agent.mbus'",
		},
		{
			name: "blobstore provider the agent settings cannot express",
			properties: map[string]any{
				"agent":     map[string]any{"mbus": testMbus},
				"blobstore": map[string]any{"provider": "swift"},
			},
			wantErr: "blobstore.provider 'swift' is not one of local, dav, s3, gcs",
		},
		{
			name: "dav blobstore without an address",
			properties: map[string]any{
				"agent":     map[string]any{"mbus": testMbus},
				"blobstore": map[string]any{"provider": "dav"},
			},
			wantErr: "Can't find property 'agent.blobstore.address', or 'blobstore.address'",
		},
		{
			name: "local blobstore without a path",
			properties: map[string]any{
				"agent":     map[string]any{"mbus": testMbus},
				"blobstore": map[string]any{"provider": "local"},
			},
			wantErr: "Can't find property 'blobstore.path'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rendered, err := renderTemplate(t, "cpi.json.erb", tt.properties)
			if err == nil {
				t.Fatalf("rendered without error:\n%s", rendered)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

// TestCPIWrapperExecsTheBinaryWithTheRenderedConfig runs the rendered bin/cpi
// against a stand-in binary that echoes its arguments and its stdin.
func TestCPIWrapperExecsTheBinaryWithTheRenderedConfig(t *testing.T) {
	rendered, err := renderTemplate(t, "cpi.erb", map[string]any{"agent": map[string]any{"mbus": testMbus}})
	if err != nil {
		t.Fatalf("rendering: %v", err)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "cpi-wrapper")
	writeExecutable(t, wrapper, rendered)
	packagesDir := filepath.Join(dir, "packages")
	writeExecutable(t, filepath.Join(packagesDir, "libvirt_cpi", "bin", "cpi"),
		"#!/bin/sh\nprintf '%s\\n' \"$@\"\ncat\n")

	tests := []struct {
		name       string
		env        []string
		wantStdout string
		wantErr    string
	}{
		{
			name:       "bosh create-env: packages and jobs where BOSH_*_DIR say",
			env:        []string{"BOSH_PACKAGES_DIR=" + packagesDir, "BOSH_JOBS_DIR=/install/jobs"},
			wantStdout: "-configPath\n/install/jobs/libvirt_cpi/config/cpi.json\n{\"method\":\"info\"}",
		},
		{
			name:    "director: /var/vcap by default",
			env:     []string{"BOSH_PACKAGES_DIR=", "BOSH_JOBS_DIR="},
			wantErr: "/var/vcap/packages/libvirt_cpi/bin/cpi",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(wrapper)
			cmd.Env = append(os.Environ(), tt.env...)
			cmd.Stdin = strings.NewReader(`{"method":"info"}`)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Fatalf("want a failure naming %s; err=%v stderr=%q", tt.wantErr, err, stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("wrapper failed: %v: %s", err, stderr.String())
			}
			if string(out) != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", out, tt.wantStdout)
			}
		})
	}
}

func writeExecutable(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// jobSpec is the part of jobs/libvirt_cpi/spec these tests read.
type jobSpec struct {
	Name       string                    `yaml:"name"`
	Templates  map[string]string         `yaml:"templates"`
	Packages   []string                  `yaml:"packages"`
	Properties map[string]map[string]any `yaml:"properties"`
}

func readJobSpec(t *testing.T) jobSpec {
	var spec jobSpec
	readYAML(t, jobPath(t, "spec"), &spec)
	return spec
}

// TestJobSpecMatchesTemplates: every template the spec names exists, every
// template file is named, and the properties the templates read are exactly
// the ones the spec declares (an undeclared one always renders as missing;
// an unread one is a setting that silently does nothing).
func TestJobSpecMatchesTemplates(t *testing.T) {
	spec := readJobSpec(t)
	if spec.Name != "libvirt_cpi" || !reflect.DeepEqual(spec.Packages, []string{"libvirt_cpi"}) {
		t.Errorf("spec name %q packages %v; want libvirt_cpi / [libvirt_cpi]", spec.Name, spec.Packages)
	}
	wantTemplates := map[string]string{"cpi.erb": "bin/cpi", "cpi.json.erb": "config/cpi.json", "pre-start.erb": "bin/pre-start"}
	if !reflect.DeepEqual(spec.Templates, wantTemplates) {
		t.Errorf("templates = %v, want %v", spec.Templates, wantTemplates)
	}
	files, err := filepath.Glob(jobPath(t, "templates", "*"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, file := range files {
		if _, named := spec.Templates[filepath.Base(file)]; !named {
			t.Errorf("template file %s is not named in the spec", filepath.Base(file))
		}
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range propertiesRead(string(text)) {
			used[name] = true
		}
	}
	for name := range used {
		if _, declared := spec.Properties[name]; !declared {
			t.Errorf("a template reads property %q, which the spec does not declare", name)
		}
	}
	for name, definition := range spec.Properties {
		if !used[name] {
			t.Errorf("the spec declares property %q, which no template reads", name)
		}
		if desc, _ := definition["description"].(string); strings.TrimSpace(desc) == "" {
			t.Errorf("property %q has no description", name)
		}
	}
}

var (
	// p's first argument names properties (its second is a default);
	// every argument of if_p names one.
	propertyCall   = regexp.MustCompile(`\bp\(\s*(\[[^\]]*\]|'[^']*'|"[^"]*")|\bif_p\(([^)]*)\)`)
	quotedProperty = regexp.MustCompile(`'([^']*)'|"([^"]*)"`)
)

// propertiesRead lists the property names a template passes to p / if_p,
// including the alternatives of p(['a', 'b']).
func propertiesRead(template string) []string {
	var names []string
	for _, call := range propertyCall.FindAllStringSubmatch(template, -1) {
		for _, quoted := range quotedProperty.FindAllStringSubmatch(call[1]+call[2], -1) {
			names = append(names, quoted[1]+quoted[2])
		}
	}
	sort.Strings(names)
	return names
}

func TestPropertiesRead(t *testing.T) {
	tests := []struct {
		template string
		want     []string
	}{
		{`p('a.b')`, []string{"a.b"}},
		{`p("a", nil) if_p('c') { }`, []string{"a", "c"}},
		{`p('a', 'default') if_p('c', "d") { }`, []string{"a", "c", "d"}},
		{`p(['agent.x', 'blobstore.x'], nil)`, []string{"agent.x", "blobstore.x"}},
		{`step('x'); map('y')`, nil},
	}
	for _, tt := range tests {
		if got := propertiesRead(tt.template); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("propertiesRead(%q) = %v, want %v", tt.template, got, tt.want)
		}
	}
}

// TestCPIJSONTemplateWritesEveryConfigKey: the template writes each key of
// internal/config's Config, so a key added there cannot be left unset by
// the release (the parse test above catches keys config does not know).
func TestCPIJSONTemplateWritesEveryConfigKey(t *testing.T) {
	// ssh and tls are written when their properties are set.
	rendered, err := renderTemplate(t, "cpi.json.erb", map[string]any{
		"agent":     map[string]any{"mbus": testMbus},
		"blobstore": map[string]any{"provider": "local", "path": "/tmp/blobs"},
		"libvirt_cpi": map[string]any{
			"ssh": map[string]any{"private_key": "k", "known_hosts": "h"},
			"tls": map[string]any{"ca_cert": "ca", "client_cert": "c", "client_key": "k"},
		},
	})
	if err != nil {
		t.Fatalf("rendering: %v", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(rendered), &keys); err != nil {
		t.Fatalf("rendered cpi.json is not a JSON object: %v", err)
	}
	var got []string
	for key := range keys {
		got = append(got, key)
	}
	sort.Strings(got)
	want := configKeys(reflect.TypeOf(config.Config{}))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cpi.json keys = %v, want every key of internal/config: %v", got, want)
	}
}

// configKeys lists the JSON names of a config struct's fields.
func configKeys(typ reflect.Type) []string {
	var keys []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	return keys
}
