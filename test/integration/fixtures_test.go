package integration

import (
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
		dir, err := os.MkdirTemp("", "it-stemcell-")
		if err != nil {
			testStemcell.err = err
			return
		}
		testStemcell.dir = dir
		testStemcell.image, testStemcell.props, testStemcell.err = devenv.UnpackTestStemcell(filepath.Join("..", ".."), dir)
	})
	if testStemcell.err != nil {
		t.Fatal(testStemcell.err)
	}
	return importImage(t, testStemcell.image, testStemcell.props)
}

// waitForBoot waits for a settings report at or after report index from
// (0 for a first boot): the guest OS is up. It returns the index after that
// report, to wait for the next boot from.
func waitForBoot(t *testing.T, vmCID string, from int) int {
	t.Helper()
	_, at, err := suite.WaitForReport(vmCID, from, 3*time.Minute, "settings report (the guest did not boot)", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventSettings
	})
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, suite.ConsoleLog(vmCID))
	}
	return at + 1
}

// createVM runs create_vm and returns the VM CID; the VM is deleted when the
// test ends, if the test did not.
func createVM(t *testing.T, stemcell string, diskCIDs []string, hostPart int) string {
	t.Helper()
	cid, run, err := suite.Client.CreateVM("agent-"+t.Name(), stemcell,
		map[string]any{"cpus": 1, "memory": 384, "ephemeral_disk": 1024},
		suite.Networks(hostPart), map[string]any{"bosh": map[string]any{"group": "it"}}, diskCIDs)
	checkRun(t, run, nil)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, run.Stderr)
	}
	t.Cleanup(func() { call(t, "delete_vm", cid) })
	return cid
}
