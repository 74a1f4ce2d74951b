package release

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
)

// opsFileOp is one operation of a bosh ops file.
type opsFileOp struct {
	Type  string `yaml:"type"`
	Path  string `yaml:"path"`
	Value any    `yaml:"value"`
	file  string // the ops file it was read from, for messages
}

func readOpsFile(t *testing.T, name string) []opsFileOp {
	t.Helper()
	var ops []opsFileOp
	readYAML(t, filepath.Join(repoRoot(t), "manifests", name), &ops)
	for i := range ops {
		ops[i].file = "manifests/" + name
	}
	return ops
}

func opAt(t *testing.T, ops []opsFileOp, path string) opsFileOp {
	t.Helper()
	for _, op := range ops {
		if op.Path == path {
			return op
		}
	}
	file := "the ops file"
	if len(ops) > 0 {
		file = ops[0].file
	}
	t.Fatalf("%s has no operation on %s", file, path)
	return opsFileOp{}
}

// TestCreateEnvOpsFileFollowsBoshDeployment: manifests/cpi.yml sets what
// bosh-deployment's CPI ops files set the way they set it: hypervisor
// explicit, NTP through the agents' env (not the CPI's ntp property, which
// that env overrides), and the director's CPI job without the instance
// group's blobstore, so the agents' blobstore password is not copied into
// every VM's settings. Both CPI jobs' properties render a cpi.json that
// config parses.
func TestCreateEnvOpsFileFollowsBoshDeployment(t *testing.T) {
	ops := readOpsFile(t, "cpi.yml")
	for _, op := range ops {
		if strings.Contains(op.Path, "/cloud_provider/properties/ntp") {
			t.Errorf("ntp is set through %s; bosh-deployment sets it in /resource_pools/0/env/bosh/ntp", op.Path)
		}
	}
	for _, path := range []string{"/resource_pools/0/env/bosh/ntp?", "/instance_groups/name=bosh/properties/agent?/env/bosh/ntp"} {
		if ntp, ok := opAt(t, ops, path).Value.([]any); !ok || len(ntp) == 0 {
			t.Errorf("%s: %v; want a list of NTP servers", path, ntp)
		}
	}

	// create-env's CPI: bosh.yml's cloud_provider properties plus ours.
	createEnv := map[string]any{
		"libvirt_cpi": opAt(t, ops, "/cloud_provider/properties/libvirt_cpi?").Value,
		"agent":       map[string]any{"mbus": testMbus},
		"blobstore":   map[string]any{"provider": "local", "path": "/var/vcap/micro_bosh/data/cache"},
	}
	if cfg := renderedConfig(t, createEnv); cfg.Hypervisor != "auto" {
		t.Errorf("create-env CPI: hypervisor %q; want auto set explicitly", cfg.Hypervisor)
	}

	job, ok := opAt(t, ops, "/instance_groups/name=bosh/jobs/-").Value.(map[string]any)
	props, _ := job["properties"].(map[string]any)
	if !ok || job["name"] != "libvirt_cpi" || props == nil {
		t.Fatalf("director's CPI job: %v", job)
	}
	if blobstore, present := props["blobstore"]; !present || blobstore != nil {
		t.Errorf("director's CPI job: blobstore %v (present %v); want null, as bosh-deployment's virtualbox/cpi.yml", blobstore, present)
	}
	// Rendered as the job gets them: blobstore null leaves the spec's
	// defaults, the variables filled in.
	cfg := renderedConfig(t, map[string]any{
		"libvirt_cpi": withURI(props["libvirt_cpi"], "qemu+tcp://192.168.122.1/system"),
		"agent":       map[string]any{"mbus": "nats://10.0.0.6:4222"},
	})
	if cfg.Agent.Blobstore != nil || cfg.Hypervisor != "auto" {
		t.Errorf("director's CPI: agent blobstore %+v, hypervisor %q; want none and auto", cfg.Agent.Blobstore, cfg.Hypervisor)
	}
}

// withURI is the job's libvirt_cpi properties with the variable-bearing uri
// replaced by a value.
func withURI(libvirtCPI any, uri string) map[string]any {
	out := map[string]any{}
	if m, ok := libvirtCPI.(map[string]any); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	out["uri"] = uri
	return out
}

func renderedConfig(t *testing.T, properties map[string]any) config.Config {
	t.Helper()
	out, err := renderTemplate(t, "cpi.json.erb", properties)
	if err != nil {
		t.Fatalf("rendering cpi.json.erb with %v: %v", properties, err)
	}
	cfg, err := config.Parse([]byte(out))
	if err != nil {
		t.Fatalf("config.Parse of the rendered cpi.json: %v\n%s", err, out)
	}
	return cfg
}

// TestDocsNameANobleStemcell: bosh-deployment's releases are compiled for
// noble; the docs and the ops file must not send users to jammy.
func TestDocsNameANobleStemcell(t *testing.T) {
	for _, doc := range []string{"README.md", "docs/create-env.md", "manifests/cpi.yml"} {
		raw, err := os.ReadFile(filepath.Join(repoRoot(t), doc))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "ubuntu-jammy") || !strings.Contains(string(raw), "bosh-openstack-kvm-ubuntu-noble") {
			t.Errorf("%s must name the bosh-openstack-kvm-ubuntu-noble stemcell and no jammy one", doc)
		}
	}
}

// TestDockerOpsFile: manifests/docker.yml, on top of cpi.yml, makes both
// CPIs (create-env's and the director's) runtime docker with cpi.json that
// config parses, and asks the CPI to create the Docker network from the
// manual network's subnet.
func TestDockerOpsFile(t *testing.T) {
	ops := readOpsFile(t, "docker.yml")
	createEnv := map[string]any{
		"libvirt_cpi": opAt(t, ops, "/cloud_provider/properties/libvirt_cpi?").Value,
		"agent":       map[string]any{"mbus": testMbus},
		"blobstore":   map[string]any{"provider": "local", "path": "/var/vcap/micro_bosh/data/cache"},
	}
	if cfg := renderedConfig(t, createEnv); cfg.Runtime != "docker" || cfg.Docker.Host != "unix:///var/run/docker.sock" {
		t.Errorf("create-env CPI: runtime %q, docker host %q; want docker on the local socket", cfg.Runtime, cfg.Docker.Host)
	}
	director, _ := opAt(t, ops, "/instance_groups/name=bosh/jobs/name=libvirt_cpi/properties/libvirt_cpi?").Value.(map[string]any)
	docker, _ := director["docker"].(map[string]any)
	if docker["host"] != "((docker_host_from_director))" {
		t.Fatalf("director's CPI: docker %v; want host ((docker_host_from_director))", docker)
	}
	director = map[string]any{"runtime": director["runtime"], "docker": map[string]any{"host": "tcp://10.245.0.1:2376"}}
	if cfg := renderedConfig(t, map[string]any{"libvirt_cpi": director, "agent": map[string]any{"mbus": "nats://10.245.0.6:4222"}}); cfg.Runtime != "docker" {
		t.Errorf("director's CPI: runtime %q; want docker", cfg.Runtime)
	}
	network, _ := opAt(t, ops, "/networks/name=default/subnets/0/cloud_properties?").Value.(map[string]any)
	if network["name"] != "((docker_network))" || network["mode"] != "nat" {
		t.Errorf("network cloud_properties %v; want name ((docker_network)), mode nat", network)
	}
}
