package main

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// Linux input events (linux/input.h) on amd64: a 16-byte timeval, then
// type, code (u16) and value (s32).
const (
	inputEventSize = 24
	evKey          = 1
	keyPower       = 116
)

// isPowerPress tells whether one input event is the power key going down.
func isPowerPress(ev []byte) bool {
	if len(ev) < inputEventSize {
		return false
	}
	typ := binary.LittleEndian.Uint16(ev[16:])
	code := binary.LittleEndian.Uint16(ev[18:])
	value := int32(binary.LittleEndian.Uint32(ev[20:]))
	return typ == evKey && code == keyPower && value == 1
}

// watchPowerButton powers the guest off when the ACPI power button is
// pressed (a graceful shutdown from the host), so reboot_vm need not wait
// for its forced reset.
func watchPowerButton(rep *reporter) {
	devices, _ := filepath.Glob("/dev/input/event*")
	for _, dev := range devices {
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		go func() {
			ev := make([]byte, inputEventSize)
			for {
				if _, err := io.ReadFull(f, ev); err != nil {
					return
				}
				if isPowerPress(ev) {
					powerOff(rep)
				}
			}
		}()
	}
}

func powerOff(rep *reporter) {
	rep.report(guestcheck.Report{Event: guestcheck.EventShutdown, Message: "power button: powering off"})
	// Data disks are only mounted while their marker is read or written;
	// the config drive is read-only. Syncing is all that is left to do.
	syscall.Sync()
	time.Sleep(100 * time.Millisecond)
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
