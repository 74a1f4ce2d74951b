package docker

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// Eight callers at once, each on its own connection as separate CPI
// processes are: create VMs on one manual network that none of them has
// made yet (all race to create it), attach and detach a disk each, delete
// everything. Every VM sees its own disk and its own static IP; nothing
// is left.
func TestParallelLifecycle(t *testing.T) {
	const n = 8
	e := newTestEnv(t)
	sc := e.stemcell()
	name, subnet := e.testNetwork()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = parallelOne(e, sc, name, subnet, i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if err := e.r.DeleteNetwork(e.ctx, name); err != nil {
		t.Error(err)
	}
	if left := e.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	nets, _ := e.r.api.NetworkList(e.ctx, networkListByName(name))
	if len(nets) > 0 {
		t.Errorf("%d networks named %s remain (duplicates made by the race?)", len(nets), name)
	}
}

func parallelOne(e *testEnv, sc, netName string, subnet *Subnet, i int) error {
	r := e.open()
	defer r.Close()
	spec := e.vmSpec(nicSpec{BOSHNetwork: "manual", DockerNetwork: netName, IP: hostIn(subnet, byte(10+i)), Create: subnet})
	spec.StemcellCID = sc
	settings, err := r.createContainerVM(e.ctx, spec, settingsFor(spec.CID, spec.NICs...))
	if err != nil {
		return err
	}
	d := disk.NewCID()
	if err := r.createDisk(e.ctx, d, 8); err != nil {
		return err
	}
	hint, err := r.AttachDisk(e.ctx, spec.CID, d)
	if err != nil {
		return err
	}
	out, code := e.exec(spec.CID, "sh", "-c", fmt.Sprintf("echo %s > %s/who && cat %s/who && ip -o addr show eth0 && cat /sys/class/net/eth0/address", d, hint.Path, hint.Path))
	if code != 0 || !strings.Contains(out, d) || !strings.Contains(out, spec.NICs[0].IP+"/24") || !strings.Contains(out, settings.Networks["manual"].MAC) {
		return fmt.Errorf("VM %s: guest says %q (exit %d), want disk %s, IP %s, MAC %s", spec.CID, out, code, d, spec.NICs[0].IP, settings.Networks["manual"].MAC)
	}
	if err := r.DetachDisk(e.ctx, spec.CID, d); err != nil {
		return err
	}
	if err := r.DeleteVM(e.ctx, spec.CID); err != nil {
		return err
	}
	return r.DeleteDisk(e.ctx, d)
}
