package devenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestRunPID(t *testing.T) {
	cases := []struct {
		name, prefix string
		suffix       bool
		pid          int
		ok           bool
	}{
		{"cpi-it-4242", objectPrefix, false, 4242, true},
		{"cpi-lvtest0a1b2c3d-77", objectPrefix, false, 77, true},
		{"cpi-life-fault-9", objectPrefix, false, 9, true},
		{"bosh-libvirt-cpi-it-4242-123456789", rootPrefix, true, 4242, true},
		{"bosh-libvirt-cpi-lvtest-5-987", rootPrefix, true, 5, true},
		{"default", objectPrefix, false, 0, false},
		{"cpi-demo", objectPrefix, false, 0, false},
		{"cpi-it-x", objectPrefix, false, 0, false},
		{"bosh", objectPrefix, false, 0, false},
		{"bosh-libvirt-cpi-it-123456789", rootPrefix, true, 0, false},
	}
	for _, c := range cases {
		pid, ok := runPID(c.name, c.prefix, c.suffix)
		if pid != c.pid || ok != c.ok {
			t.Errorf("runPID(%q) = %d, %v; want %d, %v", c.name, pid, ok, c.pid, c.ok)
		}
	}
}

func TestAlive(t *testing.T) {
	if !alive(os.Getpid()) {
		t.Error("this process is reported dead")
	}
	if alive(1 << 30) { // above any pid_max
		t.Error("a pid above pid_max is reported alive")
	}
}

// TestSweepRemovesWhatADeadRunLeft plays a run that was killed: a network,
// a pool and a directory named after a process that has exited, beside
// the same for this (live) process. Only the dead run's are removed.
func TestSweepRemovesWhatADeadRunLeft(t *testing.T) {
	uri, run, err := SuiteURI("sweep test")
	if err != nil {
		t.Fatal(err)
	}
	if !run {
		return
	}
	child := exec.Command("true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	dead, live := child.Process.Pid, os.Getpid()
	type made struct{ net, pool, dir string }
	makeRun := func(pid int) made {
		name := fmt.Sprintf("cpi-sweeptest-%d", pid)
		dir, err := os.MkdirTemp("", fmt.Sprintf("%ssweeptest-%d-", rootPrefix, pid))
		if err != nil {
			t.Fatal(err)
		}
		netXML := filepath.Join(dir, "net.xml")
		os.WriteFile(netXML, []byte(fmt.Sprintf("<network><name>%s</name></network>", name)), 0o644)
		for _, args := range [][]string{{"net-define", netXML}, {"pool-define-as", name, "dir", "--target", filepath.Join(dir, "pool")}} {
			if out, err := virsh(uri, args...); err != nil {
				t.Fatalf("virsh %v: %s", args, out)
			}
		}
		t.Cleanup(func() { removeRun(uri, dir, name); os.RemoveAll(dir) })
		return made{name, name, dir}
	}
	deadRun, liveRun := makeRun(dead), makeRun(live)

	SweepDeadRuns(uri)

	exists := func(m made) (net, pool, dir bool) {
		_, netErr := virsh(uri, "net-info", m.net)
		_, poolErr := virsh(uri, "pool-info", m.pool)
		_, dirErr := os.Stat(m.dir)
		return netErr == nil, poolErr == nil, dirErr == nil
	}
	if n, p, d := exists(deadRun); n || p || d {
		t.Errorf("dead run (pid %d) left: network %v, pool %v, directory %v", dead, n, p, d)
	}
	if n, p, d := exists(liveRun); !n || !p || !d {
		t.Errorf("live run (pid %d) was touched: network %v, pool %v, directory %v remain", live, n, p, d)
	}
}
