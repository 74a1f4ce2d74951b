package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// importStemcell runs create_stemcell on a blank qcow2 of virtualSize and
// deletes the stemcell when the test ends. Its VMs never boot an OS, which
// is all the VM-level tests need.
func importStemcell(t *testing.T, virtualSize string) string {
	t.Helper()
	image, err := devenv.BlankStemcellImage(t.TempDir(), virtualSize)
	if err != nil {
		t.Fatal(err)
	}
	return importImage(t, image, map[string]any{
		"name": "test", "version": "1", "infrastructure": "openstack", "hypervisor": "kvm", "disk_format": "qcow2",
	})
}

func importImage(t *testing.T, image string, props map[string]any) string {
	t.Helper()
	cid := resultString(t, mustCall(t, "create_stemcell", image, props))
	t.Cleanup(func() { call(t, "delete_stemcell", cid) })
	return cid
}

var testStemcell struct {
	once  sync.Once
	dir   string
	image string
	props map[string]any
	err   error
}

// importBootableStemcell imports the test stemcell (make test-stemcell):
// a Linux guest that acknowledges hot-unplug, which live detach needs.
func importBootableStemcell(t *testing.T) string {
	t.Helper()
	testStemcell.once.Do(func() {
		tarball := filepath.Join("..", "..", "build", "test-stemcell.tgz")
		if _, err := os.Stat(tarball); err != nil {
			testStemcell.err = fmt.Errorf("no test stemcell at %s: run `make test-stemcell` (scripts/test.sh does)", tarball)
			return
		}
		dir, err := os.MkdirTemp("", "it-stemcell-")
		if err != nil {
			testStemcell.err = err
			return
		}
		testStemcell.dir = dir
		var manifest devenv.Manifest
		testStemcell.image, manifest, testStemcell.err = devenv.UnpackStemcell(tarball, dir)
		testStemcell.props = manifest.CloudProperties
	})
	if testStemcell.err != nil {
		t.Fatal(testStemcell.err)
	}
	return importImage(t, testStemcell.image, testStemcell.props)
}

// waitForBoot waits until the guest's agent has reported its settings more
// than `before` times (0 for a first boot): the guest OS is up.
func waitForBoot(t *testing.T, vmCID string, before int) int {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		n := 0
		for _, r := range guestcheck.ParseReports(suite.ConsoleLog(vmCID)) {
			if r.Event == guestcheck.EventSettings {
				n++
			}
		}
		if n > before {
			return n
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("VM %s did not boot within 3 minutes; console:\n%s", vmCID, suite.ConsoleLog(vmCID))
	return 0
}

func networksSpec(hostPart int) map[string]any { return suite.Networks(hostPart) }

// createVM runs create_vm and returns the VM CID; the VM is deleted when the
// test ends, if the test did not.
func createVM(t *testing.T, stemcell string, diskCIDs []string, hostPart int) string {
	t.Helper()
	cid, run, err := suite.Client.CreateVM("agent-"+t.Name(), stemcell,
		map[string]any{"cpus": 1, "memory": 384, "ephemeral_disk": 1024},
		networksSpec(hostPart), map[string]any{"bosh": map[string]any{"group": "it"}}, diskCIDs)
	checkRun(t, run, nil)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, run.Stderr)
	}
	t.Cleanup(func() { call(t, "delete_vm", cid) })
	return cid
}
