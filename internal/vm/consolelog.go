package vm

import (
	"path/filepath"
	"regexp"
	"time"
)

// Console logs of deleted VMs are moved aside rather than removed, so a VM
// nobody can log into still has a post-mortem after a recreate or a
// delete-env. They are bounded: the newest KeptConsoleLogs are kept, fewer
// when together they pass KeptConsoleLogBytes (the newest one always stays).
const (
	KeptConsoleLogs     = 10
	KeptConsoleLogBytes = 64 << 20
	keptConsoleDirName  = "deleted"
	keptTimeLayout      = "20060102T150405.000Z"
)

var keptConsoleLogPattern = regexp.MustCompile(`^vm-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-(\d{8}T\d{6}\.\d{3}Z)\.log$`)

// KeptConsoleDir is where the console logs of deleted VMs go, below the
// console log directory.
func KeptConsoleDir(consoleDir string) string { return filepath.Join(consoleDir, keptConsoleDirName) }

// KeptConsoleLogName names the kept console log of VM cid deleted at.
func KeptConsoleLogName(cid string, at time.Time) string {
	return cid + "-" + at.UTC().Format(keptTimeLayout) + ".log"
}

// KeptConsoleLogTime tells whether name is a kept console log, and when its
// VM was deleted.
func KeptConsoleLogTime(name string) (time.Time, bool) {
	m := keptConsoleLogPattern.FindStringSubmatch(name)
	if m == nil {
		return time.Time{}, false
	}
	at, err := time.Parse(keptTimeLayout, m[1])
	return at, err == nil
}
