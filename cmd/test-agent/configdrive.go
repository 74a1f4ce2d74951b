package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// configDriveLabels are the labels the agent looks for.
var configDriveLabels = []string{"config-2", "CONFIG-2"}

const (
	isoDescriptorOffset = 32768 // first volume descriptor (sector 16)
	userDataPath        = "ec2/latest/user-data"
	configDriveMount    = "/run/config-drive"
)

// filesystemLabel reads the label of an ISO9660 or FAT filesystem from its
// first sectors, as blkid would: there is no udev (and no by-label link) in
// this guest. It returns the filesystem type for mount(2) too.
func filesystemLabel(r io.ReaderAt) (label, fstype string, ok bool) {
	pvd := make([]byte, 2048)
	if n, _ := r.ReadAt(pvd, isoDescriptorOffset); n == len(pvd) &&
		pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
		// The primary volume descriptor's volume identifier: bytes 40-71.
		return strings.TrimRight(string(pvd[40:72]), " \x00"), "iso9660", true
	}
	boot := make([]byte, 512)
	if n, _ := r.ReadAt(boot, 0); n != len(boot) || boot[510] != 0x55 || boot[511] != 0xAA {
		return "", "", false
	}
	switch {
	case string(boot[82:87]) == "FAT32":
		return strings.TrimRight(string(boot[71:82]), " \x00"), "vfat", true
	case string(boot[54:57]) == "FAT":
		return strings.TrimRight(string(boot[43:54]), " \x00"), "vfat", true
	}
	return "", "", false
}

func isConfigDriveLabel(label string) bool {
	return slices.Contains(configDriveLabels, label)
}

// findSettingsSource looks at every block device until one is a settings
// source: a config-2 labelled drive (OpenStack stemcells) wins over the env
// CD-ROM (vSphere stemcells); a SATA CD-ROM shows up a moment after its
// driver loads.
func findSettingsSource(wait time.Duration) (settingsSource, error) {
	deadline := time.Now().Add(wait)
	for {
		names, _ := filepath.Glob("/sys/block/*")
		var env *settingsSource
		for _, sys := range names {
			name := filepath.Base(sys)
			if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") {
				continue
			}
			kind, fstype := sourceOn(name)
			switch kind {
			case sourceConfigDrive:
				return settingsSource{"/dev/" + name, fstype, kind}, nil
			case sourceCDROMEnv:
				env = &settingsSource{"/dev/" + name, fstype, kind}
			}
		}
		if env != nil {
			return *env, nil
		}
		if time.Now().After(deadline) {
			return settingsSource{}, fmt.Errorf("no block device labelled %s, nor an ISO9660 disc in /dev/%s (the env file of vSphere stemcells), within %s",
				strings.Join(configDriveLabels, " or "), envCDROMDevice, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func sourceOn(name string) (kind, fstype string) {
	f, err := os.Open("/dev/" + name)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	return sourceKind(name, f)
}

// readUserData mounts the config drive read-only and reads the settings.
func readUserData(device, fstype string) ([]byte, error) {
	if err := os.MkdirAll(configDriveMount, 0o700); err != nil {
		return nil, err
	}
	if err := syscall.Mount(device, configDriveMount, fstype, syscall.MS_RDONLY, ""); err != nil && err != syscall.EBUSY {
		return nil, fmt.Errorf("mounting %s (%s): %w", device, fstype, err)
	}
	data, err := os.ReadFile(filepath.Join(configDriveMount, userDataPath))
	if err != nil {
		return nil, fmt.Errorf("reading %s on %s: %w", userDataPath, device, err)
	}
	return bytes.TrimSpace(data), nil
}
