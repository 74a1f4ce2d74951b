package devenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The names a run's objects carry: libvirt networks and pools
// cpi-<name>-<pid>, files in <tmp>/bosh-libvirt-cpi-<name>-<pid>-<random>.
const (
	objectPrefix = "cpi-"
	rootPrefix   = "bosh-libvirt-cpi-"
)

// runPID reads the pid from a run's object or directory name
// (<prefix><name>-<pid>[-<random>]); ok is false for any other name.
func runPID(name, prefix string, hasSuffix bool) (int, bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return 0, false
	}
	parts := strings.Split(rest, "-")
	if hasSuffix {
		if len(parts) < 3 {
			return 0, false
		}
		parts = parts[:len(parts)-1]
	}
	if len(parts) < 2 {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[len(parts)-1])
	return pid, err == nil && pid > 0
}

// alive tells whether a process with this pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// ProcessGone tells whether pid has ended: no such process, or a zombie
// no one has reaped yet (a daemon whose parent exited is reaped late).
func ProcessGone(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which may itself hold ") ".
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

// SweepDeadRuns removes what earlier runs of the suites, the demo or bench
// left when they were killed: their directories, the domains whose disks
// live there, their pools and networks, each recognised by the project's
// prefixes and a pid that no longer runs. A live run is never touched.
func SweepDeadRuns(uri string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), rootPrefix+"*"))
	for _, dir := range dirs {
		if pid, ok := runPID(filepath.Base(dir), rootPrefix, true); ok && !alive(pid) {
			removeRun(uri, dir, "")
			os.RemoveAll(dir)
		}
	}
	for _, kind := range []string{"net", "pool"} {
		out, err := virsh(uri, kind+"-list", "--all", "--name")
		if err != nil {
			continue
		}
		for _, name := range lines(out) {
			if pid, ok := runPID(name, objectPrefix, false); ok && !alive(pid) {
				removeRun(uri, "", name)
			}
		}
	}
}

// removeRun removes the domains whose definition names files under root,
// then the pool and network called name (a run uses one name for both).
// Either may be empty. It returns what failed.
func removeRun(uri, root, name string) []string {
	var problems []string
	if root != "" {
		out, _ := virsh(uri, "list", "--all", "--name")
		for _, dom := range lines(out) {
			xml, err := virsh(uri, "dumpxml", "--inactive", dom)
			if err != nil || !strings.Contains(xml, root+"/") {
				continue
			}
			virsh(uri, "destroy", dom)
			if out, err := virsh(uri, "undefine", "--nvram", dom); err != nil {
				problems = append(problems, fmt.Sprintf("undefining domain %s: %s", dom, out))
			}
		}
	}
	if name == "" {
		return problems
	}
	if _, err := virsh(uri, "pool-info", name); err == nil {
		// An inactive pool lists no volumes; its files go with the run's directory.
		vols, _ := volumeNames(uri, name)
		for _, vol := range vols {
			virsh(uri, "vol-delete", "--pool", name, vol)
		}
		virsh(uri, "pool-destroy", name)
		if out, err := virsh(uri, "pool-undefine", name); err != nil {
			problems = append(problems, out)
		}
	}
	if out, err := virsh(uri, "net-destroy", name); err != nil && !strings.Contains(out, "not active") && !strings.Contains(out, "no network") {
		problems = append(problems, out)
	}
	if out, err := virsh(uri, "net-undefine", name); err != nil && !strings.Contains(out, "no network") {
		problems = append(problems, out)
	}
	return problems
}
