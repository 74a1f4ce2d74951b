package devenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// ConsoleLogPath is where the VM's serial console is written.
func (e *Env) ConsoleLogPath(vmCID string) string {
	return filepath.Join(e.StoreDir, "console", vmCID+".log")
}

// ConsoleLog is what the VM's serial console wrote so far.
func (e *Env) ConsoleLog(vmCID string) string {
	raw, _ := os.ReadFile(e.ConsoleLogPath(vmCID))
	return string(raw)
}

// GuestReports are the test stemcell agent's reports on the VM's console so far.
func (e *Env) GuestReports(vmCID string) []guestcheck.Report {
	return guestcheck.ParseReports(e.ConsoleLog(vmCID))
}

// WaitForReport polls the console until match accepts a report at or
// after index from, or the timeout passes. It returns the report and its
// index; the error lists what the guest did report.
func (e *Env) WaitForReport(vmCID string, from int, timeout time.Duration, what string, match func(guestcheck.Report) bool) (guestcheck.Report, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		console := e.ConsoleLog(vmCID)
		reports := guestcheck.ParseReports(console)
		for i := from; i < len(reports); i++ {
			if match(reports[i]) {
				return reports[i], i, nil
			}
		}
		if time.Now().After(deadline) {
			return guestcheck.Report{}, len(reports), fmt.Errorf("VM %s: no %s within %s; the guest reported:\n%sits console's last other lines:\n%s",
				vmCID, what, timeout, DescribeReports(reports), otherConsoleLines(console, consoleTailLines))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// consoleTailLines is how many of the console's own lines (kernel,
// firmware) a failed wait shows beside the reports.
const consoleTailLines = 15

// otherConsoleLines are the last n console lines that are not reports,
// indented, for error messages: what the kernel said when a report is
// missing.
func otherConsoleLines(console string, n int) string {
	var lines []string
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.Contains(line, guestcheck.ReportPrefix) {
			lines = append(lines, "  "+line)
		}
	}
	if len(lines) == 0 {
		return "  (nothing)\n"
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n") + "\n"
}

// DescribeReports lists reports one JSON line each, for error messages.
func DescribeReports(reports []guestcheck.Report) string {
	if len(reports) == 0 {
		return "  (nothing)\n"
	}
	var b strings.Builder
	for _, r := range reports {
		line, _ := json.Marshal(r)
		fmt.Fprintf(&b, "  %s\n", line)
	}
	return b.String()
}
