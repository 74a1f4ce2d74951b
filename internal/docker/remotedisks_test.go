package docker

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// Persistent disks on a tcp:// daemon (TLS, client certificate): a disk
// is a volume of that host; attach and detach recreate the container,
// which keeps its name, static IP, MACs and settings (the agent in the new
// container reads the same document, by its hash), the agent finds the
// disk at its hint, and the data the first VM's agent wrote is read by a
// second VM's agent after detach and attach, and by a third made with the
// disk at create_vm. Refusals as on a local host;
// resize and snapshot NotSupported; nothing left after the deletes.
func TestRemoteDisksRecreateTheContainer(t *testing.T) {
	e, remote, _, _ := newRemoteEnv(t)
	sc := e.agentStemcell()
	netName, subnet := e.testNetwork()
	spec1 := e.agentSpec(sc, netName, subnet, hostIn(subnet, 10))
	vm1 := e.bootAgent(spec1, agentSettings(spec1, subnet, "02:b0:5c:00:02:01"))
	spec2 := e.agentSpec(sc, "", nil, "")
	e.bootAgent(spec2, agentSettings(spec2, nil, "02:b0:5c:00:02:02"))

	d := disk.NewCID()
	if err := e.r.CreateDisk(e.ctx, disk.Spec{CID: d, SizeMiB: 16}); err != nil {
		t.Fatal(err)
	}
	if has, err := e.r.HasDisk(e.ctx, d); !has || err != nil {
		t.Fatalf("has_disk after create_disk on %s: %v %v", remote, has, err)
	}
	before := e.containerID(spec1.CID)
	hint, err := e.r.AttachDisk(e.ctx, spec1.CID, d)
	if err != nil {
		t.Fatal(err)
	}
	if hint.Path != DiskHintDir+"/"+d {
		t.Errorf("hint %+v", hint)
	}
	if after := e.containerID(spec1.CID); after == before {
		t.Errorf("attach_disk on %s kept container %s: no mount can be added to it", remote, before)
	}
	// The new container: same settings, NICs by MAC, the static IP.
	if err := checkAgentBoot(e, spec1, vm1); err != nil {
		t.Fatalf("after recreation: %v", err)
	}
	first, err := checkAgentDisk(e, spec1.CID, d, hint, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created {
		t.Errorf("a new disk should be found empty and marked: %s", rawReport(first))
	}

	kept := e.containerID(spec1.CID)
	if again, err := e.r.AttachDisk(e.ctx, spec1.CID, d); err != nil || again != hint || e.containerID(spec1.CID) != kept {
		t.Errorf("attaching again to the same VM: %+v %v, container %s -> %s", again, err, kept, e.containerID(spec1.CID))
	}
	if disks, err := e.r.AttachedDisks(e.ctx, spec1.CID); err != nil || fmt.Sprint(disks) != fmt.Sprint([]string{d}) {
		t.Errorf("get_disks %v %v", disks, err)
	}
	if holders, err := e.r.DiskHolders(e.ctx, d); err != nil || fmt.Sprint(holders) != fmt.Sprint([]string{spec1.CID}) {
		t.Errorf("holders %v %v", holders, err)
	}
	for name, err := range map[string]error{
		"delete_disk while attached": e.r.DeleteDisk(e.ctx, d),
		"attach to a second VM":      errOnly(e.r.AttachDisk(e.ctx, spec2.CID, d)),
	} {
		if !errors.Is(err, cpierr.ErrInUse) || !strings.Contains(err.Error(), d) {
			t.Errorf("%s: want ErrInUse naming the disk, got %v", name, err)
		}
	}
	for name, err := range map[string]error{
		"resize_disk":   e.r.ResizeDisk(e.ctx, d, 32),
		"snapshot_disk": e.r.SnapshotDisk(e.ctx, d, disk.NewSnapshotCID(), nil),
	} {
		if !errors.Is(err, cpierr.ErrNotSupported) || !strings.Contains(err.Error(), remote) {
			t.Errorf("%s on %s: want ErrNotSupported naming the host, got %v", name, remote, err)
		}
	}

	if err := e.r.DetachDisk(e.ctx, spec1.CID, d); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DetachDisk(e.ctx, spec1.CID, d); !errors.Is(err, cpierr.ErrNotAttached) {
		t.Errorf("detaching twice: want ErrNotAttached, got %v", err)
	}
	if err := checkAgentBoot(e, spec1, vm1); err != nil {
		t.Fatalf("after the recreation of detach_disk: %v", err)
	}
	if _, err := e.r.AttachDisk(e.ctx, spec2.CID, d); err != nil {
		t.Fatal(err)
	}
	second, err := checkAgentDisk(e, spec2.CID, d, hint, 0)
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || writtenBy(second) != vm1.AgentID {
		t.Errorf("the second VM's agent should read the first agent's (%s) marker: %s", vm1.AgentID, rawReport(second))
	}

	// delete_vm with the disk attached keeps the disk, detached.
	for _, cid := range []string{spec1.CID, spec2.CID} {
		if err := e.r.DeleteVM(e.ctx, cid); err != nil {
			t.Fatal(err)
		}
	}
	if holders, err := e.r.DiskHolders(e.ctx, d); err != nil || len(holders) != 0 {
		t.Errorf("holders after delete_vm: %v %v", holders, err)
	}
	// create_vm naming the disk (a recreated VM's): made with its volume.
	spec3 := e.agentSpec(sc, "", nil, "")
	spec3.Disks = []string{d}
	e.bootAgent(spec3, agentSettings(spec3, nil, "02:b0:5c:00:02:03"))
	third, err := checkAgentDisk(e, spec3.CID, d, hint, 0)
	if err != nil {
		t.Fatal(err)
	}
	if third.Created || writtenBy(third) != vm1.AgentID {
		t.Errorf("a VM made with the disk should find the first agent's (%s) marker: %s", vm1.AgentID, rawReport(third))
	}
	if err := e.r.DeleteVM(e.ctx, spec3.CID); err != nil {
		t.Fatal(err)
	}
	if err := e.r.DeleteDisk(e.ctx, d); err != nil {
		t.Fatal(err)
	}
	if has, err := e.r.HasDisk(e.ctx, d); has || err != nil {
		t.Errorf("has_disk after delete_disk: %v %v", has, err)
	}
	if err := e.r.DeleteNetwork(e.ctx, netName); err != nil {
		t.Error(err)
	}
	e.deleteStemcellLeavingNothing(sc)
}

// What a recreation killed midway leaves is undone by the next call that
// looks the VM up: killed after the rename, and killed after the new
// container was made (not started). Either way the container from before
// is back under its name, running, and nothing else is left.
func TestRemoteRecreationKilledMidwayIsUndone(t *testing.T) {
	e, _, _, _ := newRemoteEnv(t)
	sc := e.stemcell()
	for _, killed := range []string{"after the rename", "after the new container was made"} {
		spec := e.vmSpec()
		e.createVM(e.r, spec)
		old, err := e.r.inspectContainer(e.ctx, spec.CID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.r.api.ContainerRename(e.ctx, old.ID, e.r.name(spec.CID)+prevSuffix); err != nil {
			t.Fatal(err)
		}
		if killed == "after the new container was made" {
			cfg, host := *old.Config, *old.HostConfig
			if _, err := e.r.api.ContainerCreate(e.ctx, &cfg, &host, nil, nil, e.r.name(spec.CID)); err != nil {
				t.Fatal(err)
			}
		}
		has, err := e.r.HasVM(e.ctx, spec.CID)
		if err != nil || !has {
			t.Fatalf("killed %s: has_vm %v %v", killed, has, err)
		}
		back, err := e.r.inspectContainer(e.ctx, spec.CID)
		if err != nil || back.ID != old.ID || !back.State.Running {
			t.Errorf("killed %s: the VM's container is %s (running %v, %v); want %s back, running", killed, back.ID, back.State != nil && back.State.Running, err, old.ID)
		}
		if names := e.containerNames(); len(names) != 1 || names[0] != e.r.name(spec.CID) {
			t.Errorf("killed %s: containers %v; want only %s", killed, names, e.r.name(spec.CID))
		}
		if err := e.r.DeleteVM(e.ctx, spec.CID); err != nil {
			t.Fatal(err)
		}
	}
	e.deleteStemcellLeavingNothing(sc)
}

// bootAgent creates the VM and waits for its agent's settings report.
func (e *testEnv) bootAgent(spec containerSpec, settings agentsettings.Settings) agentsettings.Settings {
	e.t.Helper()
	booted, err := e.r.createContainerVM(e.ctx, spec, settings)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := checkAgentBoot(e, spec, booted); err != nil {
		e.t.Fatal(err)
	}
	return booted
}

func (e *testEnv) containerID(cid string) string {
	e.t.Helper()
	c, err := e.r.inspectVM(e.ctx, cid)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.ID
}

// containerNames lists the names of this test's containers.
func (e *testEnv) containerNames() []string {
	e.t.Helper()
	cs, err := e.r.api.ContainerList(e.ctx, container.ListOptions{All: true, Filters: prefixFilter(e.cfg.NamePrefix)})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, strings.TrimPrefix(containerName(c), "/"))
	}
	return out
}
