//go:build faultinject

package lxcsuite

// Fault injection: the checks above must catch a runtime that breaks the
// warden contract. Each test breaks one thing on purpose (internal/faults,
// active only in a faultinject build) and requires the check to fail.

import (
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/faults"
)

func TestFaultMissingSettingsFileIsCaught(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv(faults.EnvVar, faults.OmitSettingsFile)
	sc := e.importRootfs(0)
	net1, gw1 := e.network(21)
	s := spec(sc, [2]string{net1, "10.214.21.5"})
	settings := e.createVM(s, gw1)
	s = nicsAsCreated(s, settings)
	_, err := checkBoot(e.watchConsole(s.CID), s, settings, 0)
	if err == nil || !strings.Contains(err.Error(), "could not read its settings") {
		t.Fatalf("checkBoot on a container without its settings file = %v; want the agent's failure to read them", err)
	}
	t.Logf("caught: %v", err)
}

func TestFaultWrongDiskHintIsCaught(t *testing.T) {
	e := newTestEnv(t)
	t.Setenv(faults.EnvVar, faults.WrongDiskHint)
	sc := e.importRootfs(0)
	net1, gw1 := e.network(22)
	s := spec(sc, [2]string{net1, "10.214.22.5"})
	settings := e.createVM(s, gw1)
	s = nicsAsCreated(s, settings)
	c := e.watchConsole(s.CID)
	boot, err := checkBoot(c, s, settings, 0)
	if err != nil {
		t.Fatal(err)
	}
	diskCID := disk.NewCID()
	if err := e.b.CreateDisk(e.ctx, disk.Spec{CID: diskCID, SizeMiB: 32}); err != nil {
		t.Fatal(err)
	}
	hint, err := e.b.AttachDisk(e.ctx, s.CID, diskCID)
	if err != nil {
		t.Fatal(err)
	}
	if boot, err = nextBoot(c, s.CID, boot); err != nil {
		t.Fatal(err)
	}
	_, err = checkDisk(c, s.CID, diskCID, hint, boot)
	if err == nil || !strings.Contains(err.Error(), "the hint says") {
		t.Fatalf("checkDisk with the disk mounted off its hint = %v; want a mismatch", err)
	}
	t.Logf("caught: %v", err)
}
