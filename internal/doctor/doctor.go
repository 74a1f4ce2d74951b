// Package doctor checks a host against a cpi.json and says, for each thing
// that is wrong, the command that fixes it.
package doctor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
)

// Status of one finding.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
)

// Finding is one check's result.
type Finding struct {
	Check  string
	Status Status
	Detail string
	// Fix is a command (or short instruction) that repairs a Warn or Fail.
	Fix string
}

// RuntimeProbe checks the runtime side (libvirtd, pool, network, QEMU's
// access to files); the libvirt backend implements it.
type RuntimeProbe func(ctx context.Context, cfg config.Config) []Finding

// Run performs the local checks and then the runtime's.
func Run(ctx context.Context, cfg config.Config, probe RuntimeProbe) []Finding {
	findings := []Finding{checkStoreDir(cfg)}
	return append(findings, probe(ctx, cfg)...)
}

// Failed tells whether any finding failed.
func Failed(findings []Finding) bool {
	for _, f := range findings {
		if f.Status == Fail {
			return true
		}
	}
	return false
}

// Print writes one line per finding and its fix, indented, below it.
func Print(w io.Writer, findings []Finding) {
	for _, f := range findings {
		fmt.Fprintf(w, "[%-4s] %s: %s\n", f.Status, f.Check, f.Detail)
		if f.Fix != "" && f.Status != OK {
			for _, line := range strings.Split(f.Fix, "\n") {
				fmt.Fprintf(w, "       fix: %s\n", line)
			}
		}
	}
}

func checkStoreDir(cfg config.Config) Finding {
	const check = "store_dir"
	if err := os.MkdirAll(cfg.StoreDir, 0o755); err != nil {
		return Finding{check, Fail, fmt.Sprintf("cannot create '%s': %v", cfg.StoreDir, err),
			fmt.Sprintf("sudo mkdir -p %s && sudo chown $(id -u) %s", cfg.StoreDir, cfg.StoreDir)}
	}
	probe, err := os.CreateTemp(cfg.StoreDir, ".doctor-*")
	if err != nil {
		return Finding{check, Fail, fmt.Sprintf("'%s' is not writable: %v", cfg.StoreDir, err),
			fmt.Sprintf("sudo chown $(id -u) %s", cfg.StoreDir)}
	}
	probe.Close()
	os.Remove(probe.Name())
	return Finding{check, OK, fmt.Sprintf("'%s' is writable", cfg.StoreDir), ""}
}

// BlockedDirs lists, from the root down, the directories on the way to
// path that the QEMU user (neither owner nor root) cannot enter; libvirt
// users hit this when the pool sits under /root or a 0700 home.
func BlockedDirs(path string) []string {
	var blocked []string
	dir := filepath.Clean(path)
	for {
		info, err := os.Stat(dir)
		if err == nil && info.IsDir() && info.Mode().Perm()&0o001 == 0 {
			blocked = append([]string{dir}, blocked...)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return blocked
		}
		dir = parent
	}
}
