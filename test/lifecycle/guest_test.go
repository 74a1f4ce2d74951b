package lifecycle

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

type report = guestcheck.Report

// guestReports reads every report of the VM's console log so far.
func guestReports(env *devenv.Env, vmCID string) []report {
	return guestcheck.ParseReports(env.ConsoleLog(vmCID))
}

// waitFor polls the console until match accepts a report at or after index
// from, or the timeout passes.
func waitFor(env *devenv.Env, vmCID string, from int, timeout time.Duration, what string, match func(report) bool) (report, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		reports := guestReports(env, vmCID)
		for i := from; i < len(reports); i++ {
			if match(reports[i]) {
				return reports[i], i, nil
			}
		}
		if time.Now().After(deadline) {
			return report{}, len(reports), fmt.Errorf("VM %s: no %s within %s; the guest reported:\n%s", vmCID, what, timeout, describe(reports))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func describe(reports []report) string {
	if len(reports) == 0 {
		return "  (nothing)\n"
	}
	var b strings.Builder
	for _, r := range reports {
		fmt.Fprintf(&b, "  %s\n", raw(r))
	}
	return b.String()
}

func raw(r report) string {
	b, _ := json.Marshal(r)
	return string(b)
}
