package integration

import (
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// importStemcell runs create_stemcell on a blank qcow2 of virtualSize and
// deletes the stemcell when the test ends.
func importStemcell(t *testing.T, virtualSize string) string {
	t.Helper()
	image, err := devenv.BlankStemcellImage(t.TempDir(), virtualSize)
	if err != nil {
		t.Fatal(err)
	}
	cid := resultString(t, mustCall(t, "create_stemcell", image, map[string]any{
		"name": "test", "version": "1", "infrastructure": "openstack", "hypervisor": "kvm", "disk_format": "qcow2",
	}))
	t.Cleanup(func() { call(t, "delete_stemcell", cid) })
	return cid
}

func networksSpec(hostPart int) map[string]any { return suite.Networks(hostPart) }

// createVM runs create_vm and returns the VM CID; the VM is deleted when the
// test ends, if the test did not.
func createVM(t *testing.T, stemcell string, diskCIDs []string, hostPart int) string {
	t.Helper()
	cid, run, err := suite.Client.CreateVM("agent-"+t.Name(), stemcell,
		map[string]any{"cpus": 1, "memory": 256, "ephemeral_disk": 1024},
		networksSpec(hostPart), map[string]any{"bosh": map[string]any{"group": "it"}}, diskCIDs)
	checkRun(t, run, nil)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, run.Stderr)
	}
	t.Cleanup(func() { call(t, "delete_vm", cid) })
	return cid
}
