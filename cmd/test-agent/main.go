// Command test-agent is the agent of the project's test stemcell. It runs
// as /init of the stemcell's initramfs and does, with what the CPI gives a
// VM, what a BOSH agent does at boot: it reads its settings from the
// config drive (label config-2) or, as vSphere stemcells do, from the file
// env on the CD-ROM in /dev/sr0 (cdromenv.go), configures each network on the NIC with
// its MAC, and finds the disks as the agent of today's OpenStack stemcells
// does: a persistent disk of the settings by its disk CID in
// /dev/disk/by-id, the ephemeral disk by its hint's path, keeping
// /dev/disk/by-id as udev would. It reports each step as one JSON
// line prefixed "TEST-AGENT " on the serial console, so tests on the host
// can check the guest's view. Data disks get a filesystem and a marker
// naming them, which shows data carried from one VM to the next.
//
// In a container (a Docker VM, warden form: see warden.go) it is the
// container's PID 1 instead and reads /var/vcap/bosh/warden-cpi-agent-env.json,
// verifies the NICs Docker made by MAC and finds persistent disks under
// /warden-cpi-dev/<disk-cid>, reporting the same lines on its stdout (the
// container's log).
//
// "test-agent list-modules /lib/modules/<release>" prints the kernel
// module files the guest loads, in order: the stemcell build copies them.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

const (
	configDriveWait = 30 * time.Second
	diskWait        = 60 * time.Second
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "list-modules" {
		listModules(os.Args[2])
		return
	}
	// It formats disks and rewrites network settings: never run it
	// anywhere but as the init of a guest.
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "test-agent runs only as PID 1 of the test stemcell; usage: test-agent list-modules /lib/modules/<release>")
		os.Exit(2)
	}
	if inContainer(fileExists) {
		runWarden()
		return
	}
	runGuest()
}

func listModules(dir string) {
	files, err := requiredModuleFiles(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test-agent:", err)
		os.Exit(1)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}

func runGuest() {
	mountErr := mountKernelFilesystems()
	rep := newReporter()
	if mountErr != nil {
		rep.fail("mounting kernel filesystems", mountErr)
	}
	if err := loadModules(); err != nil {
		rep.fail("loading kernel modules", err)
	}
	watchPowerButton(rep)

	s, source, err := readSettings()
	if err != nil {
		rep.fail("reading settings", err)
		s = settings{SystemDisk: "vda"}
	} else {
		rep.report(s.report(source))
		configureNetworks(rep, s)
	}

	w := newDiskWatcher(rep, s.AgentID, s.SystemDisk, baseName(source.device))
	w.poll()
	if s.Ephemeral != nil {
		go w.resolveSettingsDisk(guestcheck.EventEphemeral, "", *s.Ephemeral, diskWait)
	}
	for _, cid := range s.persistentCIDs() {
		go w.resolveSettingsDisk(guestcheck.EventPersistent, cid, s.Persistent[cid], diskWait)
	}
	w.run()
}

func readSettings() (settings, settingsSource, error) {
	source, err := findSettingsSource(configDriveWait)
	if err != nil {
		return settings{}, source, err
	}
	var data []byte
	if source.kind == sourceCDROMEnv {
		data, err = readEnvCDROM(source.device)
	} else {
		data, err = readUserData(source.device, source.fstype)
	}
	if err != nil {
		return settings{}, source, err
	}
	s, err := parseSettings(data)
	return s, source, err
}

// mountKernelFilesystems gives the initramfs what a root filesystem gets
// from its init system: /proc, /sys, a devtmpfs /dev (device nodes appear
// and vanish with the devices, there being no udev) and a /run.
func mountKernelFilesystems() error {
	mounts := []struct{ source, target, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/run", "tmpfs"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(m.source, m.target, m.fstype, 0, ""); err != nil && err != syscall.EBUSY {
			return fmt.Errorf("mounting %s: %w", m.target, err)
		}
	}
	return nil
}

func baseName(device string) string {
	if device == "" {
		return ""
	}
	return device[len("/dev/"):]
}
