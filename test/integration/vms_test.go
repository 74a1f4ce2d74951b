package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

func TestInfo(t *testing.T) {
	raw := mustCall(t, "info")
	var info struct {
		APIVersion      int      `json:"api_version"`
		StemcellFormats []string `json:"stemcell_formats"`
	}
	json.Unmarshal(raw, &info)
	if info.APIVersion != 2 || !slices.Contains(info.StemcellFormats, "openstack-qcow2") || !slices.Contains(info.StemcellFormats, "openstack-raw") {
		t.Fatalf("info = %s", raw)
	}
}

func TestBadRequestsAnswerOnStdoutAndExitZero(t *testing.T) {
	cases := []struct {
		name, request, kind string
	}{
		{"malformed JSON", `{"method": "info", "argu`, "CpiError"},
		{"no method", `{"arguments": []}`, "CpiError"},
		{"unknown method", `{"method":"make_coffee","arguments":[],"context":{}}`, "NotImplemented"},
		{"wrong argument type", `{"method":"has_vm","arguments":[42],"context":{}}`, "CloudError"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := rawCall(t, []byte(tc.request))
			if res.ExitCode != 0 {
				t.Fatalf("exit code %d; want 0 once a response is written", res.ExitCode)
			}
			wantError(t, res, tc.kind)
		})
	}
}

func TestBrokenConfigIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpi.json")
	os.WriteFile(path, []byte(`{"hypervisor":"vmware","agent":{"mbus":"https://x"}}`), 0o600)
	cmd := newCmd(path, `{"method":"has_vm","arguments":["vm-x"],"context":{}}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(string(out), "hypervisor") || !strings.Contains(string(out), "CpiError") {
		t.Fatalf("response should name the key: %s", out)
	}
}

func TestVMLifecycle(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	vmCID := createVM(t, stemcell, nil, 10)

	if got := string(mustCall(t, "has_vm", vmCID)); got != "true" {
		t.Fatalf("has_vm of a running VM = %s", got)
	}
	xml := mustVirsh(t, "dumpxml", vmCID)
	for _, want := range []string{"<type arch='x86_64' machine=", "<acpi/>", "serial", "console", suite.Network, "model type='virtio'", "<backingStore type='file'", "bus='sata'"} {
		if !strings.Contains(xml, want) {
			t.Errorf("domain XML lacks %q", want)
		}
	}
	if strings.Contains(xml, devenv.MbusPassword) {
		t.Fatal("domain XML contains the mbus password")
	}
	if _, err := os.Stat(filepath.Join(suite.StoreDir, "console", vmCID+".log")); err != nil {
		t.Errorf("console log: %v", err)
	}

	mustCall(t, "set_vm_metadata", vmCID, map[string]any{"director": "d", "deployment": "zookeeper", "job": "zookeeper", "index": "2", "id": "abc"})
	if title := mustVirsh(t, "list", "--all", "--title"); !strings.Contains(title, "zookeeper/zookeeper/2") {
		t.Errorf("virsh list --title does not show deployment/job/index:\n%s", title)
	}

	mustCall(t, "reboot_vm", vmCID)
	if state := mustVirsh(t, "domstate", vmCID); state != "running" {
		t.Fatalf("after reboot_vm the domain is %q", state)
	}

	mustCall(t, "delete_vm", vmCID)
	if got := string(mustCall(t, "has_vm", vmCID)); got != "false" {
		t.Fatalf("has_vm after delete = %s", got)
	}
	wantError(t, call(t, "delete_vm", vmCID), "VMNotFound")
	// The console log is kept aside for a post-mortem, not removed.
	if _, err := os.Stat(filepath.Join(suite.StoreDir, "console", vmCID+".log")); !os.IsNotExist(err) {
		t.Errorf("the live console log is still there after delete_vm: %v", err)
	}
	kept, _ := filepath.Glob(filepath.Join(vm.KeptConsoleDir(filepath.Join(suite.StoreDir, "console")), vmCID+"-*.log"))
	if len(kept) != 1 {
		t.Errorf("kept console logs of %s: %v; want one", vmCID, kept)
	}
	assertNothingLeft(t, "sc-")
}

func TestStoppedVMIsStillThereAndDeletable(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	vmCID := createVM(t, stemcell, nil, 11)
	mustVirsh(t, "destroy", vmCID)
	if got := string(mustCall(t, "has_vm", vmCID)); got != "true" {
		t.Fatalf("has_vm of a stopped VM = %s", got)
	}
	mustCall(t, "delete_vm", vmCID)
	assertNothingLeft(t, "sc-")
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	cases := []struct {
		name     string
		stemcell string
		props    map[string]any
		networks map[string]any
	}{
		{"network that does not exist", stemcell, map[string]any{}, map[string]any{"n": map[string]any{"type": "dynamic", "cloud_properties": map[string]any{"name": "no-such-network"}}}},
		{"stemcell that does not exist", "sc-00000000-0000-0000-0000-000000000000", map[string]any{}, suite.Networks(12)},
		{"vCPU count the machine type cannot take", stemcell, map[string]any{"cpus": 1000, "memory": 256}, suite.Networks(13)},
		{"more memory than the host has", stemcell, map[string]any{"cpus": 1, "memory": 200 << 20}, suite.Networks(14)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := call(t, "create_vm", "agent", tc.stemcell, tc.props, tc.networks, []string{}, map[string]any{})
			wantError(t, res, "VMCreationFailed")
			if res.Response.Error.OkToRetry {
				t.Errorf("a %s is not worth a retry: %s", tc.name, res.Response.Error.Message)
			}
			assertNothingLeft(t, "sc-")
		})
	}
}

func TestForeignObjectsAreNeverTouched(t *testing.T) {
	foreign := "foreign-" + suite.Network
	xmlFile := filepath.Join(t.TempDir(), "foreign.xml")
	os.WriteFile(xmlFile, []byte("<domain type='qemu'><name>"+foreign+"</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>"), 0o644)
	mustVirsh(t, "define", xmlFile)
	defer virsh("undefine", foreign)
	// A domain of our name shape but without our marker is foreign too.
	impostor := "vm-00000000-1111-2222-3333-444444444444"
	os.WriteFile(xmlFile, []byte("<domain type='qemu'><name>"+impostor+"</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>"), 0o644)
	mustVirsh(t, "define", xmlFile)
	defer virsh("undefine", impostor)

	for _, cid := range []string{foreign, impostor, "../../etc/passwd", "vm-; rm -rf /"} {
		wantError(t, call(t, "delete_vm", cid), "VMNotFound")
		wantError(t, call(t, "reboot_vm", cid), "VMNotFound")
		wantError(t, call(t, "set_vm_metadata", cid, map[string]any{"a": "b"}), "VMNotFound")
		if got := string(mustCall(t, "has_vm", cid)); got != "false" {
			t.Errorf("has_vm(%q) = %s", cid, got)
		}
	}
	for _, dom := range []string{foreign, impostor} {
		if _, err := virsh("dominfo", dom); err != nil {
			t.Fatalf("domain %s was removed", dom)
		}
	}
	if res := call(t, "delete_stemcell", "../../etc/passwd"); res.Response.Error == nil {
		t.Fatal("delete_stemcell of a path succeeded")
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatal("/etc/passwd is gone")
	}
}

func TestCalculateVMCloudProperties(t *testing.T) {
	raw := mustCall(t, "calculate_vm_cloud_properties", map[string]any{"cpu": 2, "ram": 2048, "ephemeral_disk_size": 4096})
	var props map[string]int
	json.Unmarshal(raw, &props)
	if props["cpus"] != 2 || props["memory"] != 2048 || props["ephemeral_disk"] != 4096 {
		t.Fatalf("calculate_vm_cloud_properties = %s", raw)
	}
}

// A director CPI config with a wrong type, or a key that belongs to the job,
// is a CpiError naming the key, whatever the method.
func TestBadContextIsACpiErrorNamingTheKey(t *testing.T) {
	for key, value := range map[string]any{"hotplug_slots": "many", "store_dir": "/elsewhere"} {
		req, _ := json.Marshal(map[string]any{"method": "has_vm", "arguments": []any{"vm-x"}, "context": map[string]any{"director_uuid": "d", key: value}})
		res := rawCall(t, req)
		wantError(t, res, "CpiError")
		if !strings.Contains(res.Response.Error.Message, key) {
			t.Errorf("context %s: %s does not name the key", key, res.Response.Error.Message)
		}
	}
}
