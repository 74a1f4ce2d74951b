package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`{"agent":{"mbus":"https://mbus:p@0.0.0.0:6868"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Hypervisor: "auto", URI: "qemu:///system", StoreDir: DefaultStoreDir, StoragePool: "bosh", Network: "default",
		RebootTimeout: DefaultRebootTimeout, Machine: "q35", HotplugSlots: DefaultHotplugSlots}
	want.Agent = cfg.Agent
	if cfg.Hypervisor != want.Hypervisor || cfg.URI != want.URI || cfg.StoreDir != want.StoreDir || cfg.StoragePool != want.StoragePool ||
		cfg.Network != want.Network || cfg.RebootTimeout != want.RebootTimeout || cfg.Machine != want.Machine || cfg.HotplugSlots != want.HotplugSlots ||
		cfg.ManagedNetworkPool != "10.254.0.0/16" {
		t.Fatalf("defaults: got %+v", cfg)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	cases := []struct{ json, key string }{
		{`{"hypervisor":"vmware","agent":{"mbus":"https://h"}}`, "hypervisor"},
		{`{"store_dir":"relative","agent":{"mbus":"https://h"}}`, "store_dir"},
		{`{"storage_pool":"a/b","agent":{"mbus":"https://h"}}`, "storage_pool"},
		{`{"network":"x y","agent":{"mbus":"https://h"}}`, "network"},
		{`{"agent":{}}`, "agent.mbus"},
		{`{"agent":{"mbus":"https://h","blobstore":{"options":{}}}}`, "agent.blobstore.provider"},
		{`{"strorage_pool":"x","agent":{"mbus":"https://h"}}`, "strorage_pool"},
		{`{"reboot_timeout":"soon","agent":{"mbus":"https://h"}}`, "reboot_timeout"},
		{`{"machine":"isapc","agent":{"mbus":"https://h"}}`, "machine"},
		{`{"uri":"","hotplug_slots":-1,"agent":{"mbus":"https://h"}}`, "hotplug_slots"},
		{`{"managed_network_pool":"10.254.0.0/30","agent":{"mbus":"https://h"}}`, "key 'managed_network_pool': '10.254.0.0/30' is not a /8 to /28"},
		{`not json`, "JSON"},
		{`{"runtime":"lxd","agent":{"mbus":"https://h"}}`, "key 'runtime': must be one of libvirt, docker; got 'lxd'"},
		{`{"runtime":"docker","docker":{"host":"http://h:1"},"agent":{"mbus":"https://h"}}`, "key 'docker.host': must be unix:///PATH or tcp://HOST:PORT"},
		{`{"runtime":"docker","docker":{"host":"tcp://h"},"agent":{"mbus":"https://h"}}`, "key 'docker.host': 'tcp://h' must be tcp://HOST:PORT"},
		{`{"runtime":"docker","docker":{"host":"unix://rel/sock"},"agent":{"mbus":"https://h"}}`, "must be unix:///ABSOLUTE/PATH"},
		{`{"runtime":"docker","docker":{"tls":{"ca_cert":"x"}},"agent":{"mbus":"https://h"}}`, "key 'docker.tls': only for a tcp:// docker.host"},
		{`{"runtime":"docker","docker":{"host":"tcp://h:2376","tls":{"ca_cert":"x"}},"agent":{"mbus":"https://h"}}`, "key 'docker.tls.ca_cert'"},
		{`{"runtime":"docker","docker":{"host":"tcp://h:2376","tls":{"client_cert":"x"}},"agent":{"mbus":"https://h"}}`, "keys 'docker.tls.client_cert' and 'docker.tls.client_key'"},
		{`{"runtime":"docker","docker":{"hots":"tcp://h:2376"},"agent":{"mbus":"https://h"}}`, "unknown key \"hots\""},
		{`{"runtime":"docker","docker":{"network":7},"agent":{"mbus":"https://h"}}`, "key 'docker.network': expected string"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("Parse(%s) = %v; want an error naming %q", tc.json, err, tc.key)
		}
	}
}

// TestDockerSection: runtime docker needs no libvirt key, defaults its
// section, and takes the section from a call's context like the others.
func TestDockerSection(t *testing.T) {
	cfg, err := Parse([]byte(`{"runtime":"docker","agent":{"mbus":"https://h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.DockerSection(); d.Host != DefaultDockerHost || d.Network != DefaultDockerNetwork || d.TLS != nil {
		t.Fatalf("docker defaults: %+v", d)
	}
	if cfg.DefaultVMNetwork() != DefaultDockerNetwork || cfg.DockerStoreDir() != filepath.Join(cfg.StoreDir, "docker") {
		t.Fatalf("docker network %q, store %q", cfg.DefaultVMNetwork(), cfg.DockerStoreDir())
	}
	libvirt, err := Parse([]byte(`{"agent":{"mbus":"https://h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := map[string]json.RawMessage{"runtime": json.RawMessage(`"docker"`), "docker": json.RawMessage(`{"host":"tcp://10.0.0.9:2376","network":"bosh"}`)}
	out, err := libvirt.WithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := out.DockerSection(); out.Runtime != RuntimeDocker || d.Host != "tcp://10.0.0.9:2376" || d.Network != "bosh" || out.DefaultVMNetwork() != "bosh" {
		t.Fatalf("context override: runtime %q, docker %+v", out.Runtime, d)
	}
	ctx["docker"] = json.RawMessage(`{"hots":"tcp://10.0.0.9:2376"}`)
	if _, err := libvirt.WithContext(ctx); err == nil || !strings.Contains(err.Error(), "hots") {
		t.Fatalf("a mistyped docker key in the context: %v", err)
	}
}

func TestLoad(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("Load of a missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "cpi.json")
	os.WriteFile(path, []byte(`{"hypervisor":"qemu","agent":{"mbus":"https://h"}}`), 0o600)
	cfg, err := Load(path)
	if err != nil || cfg.Hypervisor != "qemu" {
		t.Fatalf("Load = %+v, %v", cfg, err)
	}
}

func TestWithContext(t *testing.T) {
	base, err := Parse([]byte(`{"uri":"qemu:///system","network":"default","store_dir":"/var/store","agent":{"mbus":"https://h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := map[string]json.RawMessage{
		"director_uuid": json.RawMessage(`"d"`), "request_id": json.RawMessage(`"cpi-1"`),
		"vm":  json.RawMessage(`{"stemcell":{"api_version":2}}`),
		"uri": json.RawMessage(`"qemu+tcp://10.0.0.11/system"`), "network": json.RawMessage(`"bosh"`),
	}
	got, err := base.WithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.URI != "qemu+tcp://10.0.0.11/system" || got.Network != "bosh" {
		t.Fatalf("context did not override: %+v", got)
	}
	if got.StoreDir != "/var/store" || got.Agent.Mbus != "https://h" {
		t.Fatalf("keys the context did not set changed: %+v", got)
	}
	if _, err := base.WithContext(map[string]json.RawMessage{"hypervisor": json.RawMessage(`"vmware"`)}); err == nil || !strings.Contains(err.Error(), "hypervisor") {
		t.Fatalf("a bad override must be an error naming the key: %v", err)
	}
	same, err := base.WithContext(map[string]json.RawMessage{"request_id": json.RawMessage(`"x"`)})
	if err != nil || same.URI != base.URI {
		t.Fatalf("a context without overrides changed the config: %+v %v", same, err)
	}
}

func TestParseRefusesTrailingTextAndDuplicateKeys(t *testing.T) {
	cases := []struct{ raw, want string }{
		{`{"agent":{"mbus":"https://h"}} {"uri":"x"}`, "text after the configuration object"},
		{`{"agent":{"mbus":"https://h"}}garbage`, "not valid JSON"},
		{`{"uri":"qemu:///system","uri":"qemu+tcp://h/system","agent":{"mbus":"https://h"}}`, "key 'uri' is given twice"},
		{`{"agent":{"mbus":"https://h","mbus":"https://i"}}`, "key 'agent.mbus' is given twice"},
		{`{"agent":{"mbus":"https://h","blobstore":{"provider":"dav","options":{"a":1,"a":2}}}}`, "key 'agent.blobstore.options.a' is given twice"},
	}
	for _, c := range cases {
		if _, err := Parse([]byte(c.raw)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%s) = %v; want an error saying %q", c.raw, err, c.want)
		}
	}
	if _, err := Parse([]byte("{\"agent\":{\"mbus\":\"https://h\",\"ntp\":[\"a\",\"a\"]}}\n")); err != nil {
		t.Errorf("a repeated list value or a trailing newline is fine: %v", err)
	}
}

func TestContextRefusesJobOnlyKeysAndEveryKeyIsClassified(t *testing.T) {
	base, err := Parse([]byte(`{"agent":{"mbus":"https://h"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"store_dir", "agent", "ssh_public_key"} {
		_, err := base.WithContext(map[string]json.RawMessage{key: json.RawMessage(`"x"`)})
		if err == nil || !strings.Contains(err.Error(), "'"+key+"'") {
			t.Errorf("context %s: err = %v; want a refusal naming it", key, err)
		}
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if overridableKeys[name] == jobOnlyKeys[name] {
			t.Errorf("cpi.json key %q must be either overridable from the context or job-only", name)
		}
	}
}
