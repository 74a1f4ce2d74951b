package libvirt

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// keepConsoleLog moves the console log of VM cid, deleted now, into the
// kept-logs directory beside it and prunes that directory to its bounds.
// A log QEMU never wrote is not an error. When the log cannot be moved it
// is removed, as before logs were kept: a delete must not fail over it.
func keepConsoleLog(log *slog.Logger, path, cid string, now time.Time) error {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	dir := vm.KeptConsoleDir(filepath.Dir(path))
	kept := filepath.Join(dir, vm.KeptConsoleLogName(cid, now))
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = os.Rename(path, kept)
	}
	if err != nil {
		log.Warn("could not keep the console log of a deleted VM; removing it", "vm", cid, "path", path, "error", err)
		return removeConsoleLog(path)
	}
	log.Info("kept console log of deleted VM", "vm", cid, "path", kept)
	for _, p := range keptLogsBeyondBounds(dir, vm.KeptConsoleLogs, vm.KeptConsoleLogBytes) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("could not prune a kept console log", "path", p, "error", err)
		}
	}
	return nil
}

// keptLogsBeyondBounds are the kept console logs in dir past the newest
// keep, or past the point where the newer ones together hold maxBytes; the
// newest log always stays. Files of other names are never listed.
func keptLogsBeyondBounds(dir string, keep int, maxBytes int64) []string {
	type keptLog struct {
		path string
		at   time.Time
		size int64
	}
	entries, _ := os.ReadDir(dir)
	var logs []keptLog
	for _, e := range entries {
		at, ok := vm.KeptConsoleLogTime(e.Name())
		info, err := e.Info()
		if !ok || err != nil || !info.Mode().IsRegular() {
			continue
		}
		logs = append(logs, keptLog{filepath.Join(dir, e.Name()), at, info.Size()})
	}
	slices.SortFunc(logs, func(a, b keptLog) int { return b.at.Compare(a.at) })
	var beyond []string
	var total int64
	for i, l := range logs {
		total += l.size
		if i > 0 && (i >= keep || total > maxBytes) {
			beyond = append(beyond, l.path)
		}
	}
	return beyond
}
