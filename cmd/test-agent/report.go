package main

import (
	"encoding/json"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// reporter writes one report per line, prefixed, from any goroutine.
type reporter struct {
	mu  sync.Mutex
	out io.Writer
}

// newReporter writes to the serial console. As PID 1 our stdout already is
// /dev/console, which console=ttyS0 makes the same port: writing both
// would print every report twice, so stdout is only used when the serial
// port cannot be opened.
func newReporter() *reporter {
	if tty, err := os.OpenFile("/dev/ttyS0", os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
		return &reporter{out: tty}
	}
	return &reporter{out: os.Stdout}
}

func (r *reporter) report(rep guestcheck.Report) {
	rep.Uptime = uptime()
	body, err := json.Marshal(rep)
	if err != nil {
		body = []byte(`{"event":"error","message":"encoding a report failed"}`)
	}
	// One write per line, so reports of concurrent goroutines never mix.
	line := append([]byte(guestcheck.ReportPrefix), body...)
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out.Write(line)
}

func (r *reporter) fail(format string, err error) {
	r.report(guestcheck.Report{Event: guestcheck.EventError, Message: format + ": " + err.Error()})
}

// uptime is the guest's seconds since boot, to time the boot from inside.
func uptime() float64 {
	raw, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(raw))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}
