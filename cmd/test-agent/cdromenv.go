package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The settings source of vSphere and VirtualBox stemcells. Their agent.json
// says {"Type": "CDROM", "FileName": "env"}: bosh-agent waits for /dev/sr0,
// mounts it and reads the file env, the whole settings document as JSON.
// The VirtualBox CPI writes a plain ISO9660 holding one file, ENV, which
// Linux lists as env; with Rock Ridge or Joliet the name keeps its case.
const (
	envCDROMDevice = "sr0"
	envCDROMMount  = "/run/settings-cdrom"
)

var envFileNames = []string{"env", "ENV"}

// Settings sources, as the settings report's via names them.
const (
	sourceConfigDrive = "config-drive"
	sourceCDROMEnv    = "cdrom-env"
	sourceWardenFile  = "warden-file"
)

// settingsSource is where the settings were found.
type settingsSource struct {
	device, fstype, kind string
}

// sourceKind tells which settings source a block device is: a config-2
// labelled filesystem anywhere, else an ISO9660 disc in /dev/sr0, the
// device bosh-agent mounts whatever the disc's label.
func sourceKind(name string, r io.ReaderAt) (kind, fstype string) {
	label, fstype, ok := filesystemLabel(r)
	switch {
	case !ok:
		return "", ""
	case isConfigDriveLabel(label):
		return sourceConfigDrive, fstype
	case name == envCDROMDevice && fstype == "iso9660":
		return sourceCDROMEnv, fstype
	}
	return "", ""
}

// readEnvCDROM mounts the disc read-only and reads its env file.
func readEnvCDROM(device string) ([]byte, error) {
	if err := os.MkdirAll(envCDROMMount, 0o700); err != nil {
		return nil, err
	}
	if err := syscall.Mount(device, envCDROMMount, "iso9660", syscall.MS_RDONLY, ""); err != nil && err != syscall.EBUSY {
		return nil, fmt.Errorf("mounting %s (iso9660): %w", device, err)
	}
	data, err := readEnvFile(envCDROMMount)
	if err != nil {
		return nil, fmt.Errorf("%w on %s", err, device)
	}
	return data, nil
}

// readEnvFile reads the env file of a mounted settings disc at dir.
func readEnvFile(dir string) ([]byte, error) {
	for _, name := range envFileNames {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return bytes.TrimSpace(data), nil
	}
	return nil, fmt.Errorf("no settings file %s on the CD-ROM", envFileNames[0])
}
