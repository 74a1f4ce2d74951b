package reliability

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// vSphereKillDelays span a vSphere create_stemcell (some 300-500 ms here
// with the process start): before libvirt is reached, during the VMDK's
// upload, during its conversion, and about when it answers.
var vSphereKillDelays = []time.Duration{5 * time.Millisecond, 60 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond, 350 * time.Millisecond, 500 * time.Millisecond}

// TestKillDuringVSphereImport kills create_stemcell of the vSphere test
// stemcell (staging VMDK upload, conversion to qcow2 by libvirt) with
// SIGKILL at several delays: a call that answered is undone by
// delete_stemcell on its CID, what a killed one left (its sidecar, the
// staging VMDK, a half-made qcow2) is removed by the sweep, and nothing
// volume, file or lock is left after that.
func TestKillDuringVSphereImport(t *testing.T) {
	suiteStemcell := importStemcell(t)
	image, manifest, err := devenv.UnpackStemcell("../../build/vsphere-test-stemcell.tgz", t.TempDir())
	if err != nil {
		t.Fatalf("the vSphere test stemcell (make vsphere-test-stemcell, which scripts/test.sh runs): %v", err)
	}
	request := env.Client.Request("create_stemcell", image, manifest.CloudProperties)
	for _, delay := range vSphereKillDelays {
		finished, stdout := killAfter(t, request, delay)
		left := countLeaks(t, suiteStemcell)
		cid := ""
		if finished {
			if err := json.Unmarshal(answeredResult(t, "create_stemcell", stdout), &cid); err != nil {
				t.Fatalf("create_stemcell answered %s: %v", stdout, err)
			}
			if _, run, err := env.Client.Call("delete_stemcell", cid); err != nil {
				t.Fatalf("delete_stemcell %s: %v\n%s", cid, err, run.Stderr)
			}
		}
		swept := sweepOrphans(t)
		rest := countLeaks(t, suiteStemcell)
		t.Logf("FIGURE kill create_stemcell (vsphere-ovf) at %s: answered %v, cid %s, left %s %v; removed by the sweep: %d %v; leaks after: %d %v",
			delay, finished, orDash(cid), left, left.volumes, len(swept), swept, rest.count(), rest.all())
		if rest.count() != 0 {
			for _, v := range rest.volumes {
				env.Virsh("vol-delete", "--pool", env.Pool, v)
			}
			t.Errorf("create_stemcell killed at %s left after the sweep: %v", delay, rest.all())
		}
	}
}
