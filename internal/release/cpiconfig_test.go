package release

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// TestCPIConfigExampleIsAcceptedPerHost: every CPI of the multi-host
// example, its ((variables)) given as `bosh update-cpi-config` would give
// them, is a context the CPI accepts, naming its own host and keys.
func TestCPIConfigExampleIsAcceptedPerHost(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "manifests/cpi-config.yml"))
	if err != nil {
		t.Fatal(err)
	}
	key, public, err := devenv.NewSSHKey()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"libvirt_ssh_private_key": key}
	for i := 1; i <= 3; i++ {
		vars[fmt.Sprintf("libvirt_host_%d_known_hosts", i)] = devenv.KnownHostsLine(fmt.Sprintf("10.0.0.1%d:22", i), public)
	}
	var doc struct {
		CPIs []struct {
			Name       string         `yaml:"name"`
			Type       string         `yaml:"type"`
			Properties map[string]any `yaml:"properties"`
		} `yaml:"cpis"`
	}
	if err := yaml.Unmarshal(interpolate(t, raw, vars), &doc); err != nil {
		t.Fatal(err)
	}
	base, err := config.Parse([]byte(`{"agent":{"mbus":"nats://10.0.0.6:4222"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.CPIs) < 2 {
		t.Fatalf("want a CPI per host, found %d", len(doc.CPIs))
	}
	seen := map[string]bool{}
	for _, cpi := range doc.CPIs {
		ctx := map[string]json.RawMessage{}
		for k, v := range cpi.Properties {
			ctx[k], _ = json.Marshal(v)
		}
		cfg, err := base.WithContext(ctx)
		if err != nil {
			t.Errorf("CPI %s: its properties as a call's context: %v", cpi.Name, err)
			continue
		}
		if cpi.Type != "libvirt" || cfg.SSH == nil || seen[cfg.URI] {
			t.Errorf("CPI %s: type %q, uri %q (seen before: %v), ssh keys %v", cpi.Name, cpi.Type, cfg.URI, seen[cfg.URI], cfg.SSH != nil)
		}
		seen[cfg.URI] = true
	}
}

var variable = regexp.MustCompile(`\(\(([a-z0-9_]+)\)\)`)

// interpolate replaces ((name)) with vars[name] as a YAML block scalar
// would carry it; an unknown variable fails the test.
func interpolate(t *testing.T, raw []byte, vars map[string]string) []byte {
	t.Helper()
	return variable.ReplaceAllFunc(raw, func(m []byte) []byte {
		name := string(variable.FindSubmatch(m)[1])
		value, ok := vars[name]
		if !ok {
			t.Errorf("variable ((%s)) has no value in the test", name)
		}
		quoted, _ := json.Marshal(strings.TrimRight(value, "\n") + "\n")
		return quoted
	})
}
