package guestcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Errors of the SCSI volume-id rule.
var (
	ErrNoVolumeID      = errors.New("disk hint has no volume_id (the SCSI target id)")
	ErrBadVolumeID     = errors.New("disk hint's volume_id is not a SCSI target number")
	ErrNoSCSIDevice    = errors.New("no SCSI device at the hint's target")
	ErrAmbiguousTarget = errors.New("more than one block device at the hint's SCSI target")
)

// SCSIVolumeIDRule resolves a disk the way the agent of vSphere and
// VirtualBox stemcells does (DevicePathResolutionType "scsi", a hint with
// neither a device id the agent reads nor a lun): it asks every SCSI host
// to rescan ("- - -" into /sys/class/scsi_host/host*/scan), then takes the
// block device of /sys/bus/scsi/devices/*:0:<volume_id>:0/block/*, on any
// host, channel 0, LUN 0. SysRoot is "/sys" in a guest and a directory
// tree in tests.
type SCSIVolumeIDRule struct{ SysRoot string }

// Rescan writes the rescan request to every SCSI host; hosts that refuse
// it are skipped, as the agent skips them.
func (r SCSIVolumeIDRule) Rescan() {
	scans, _ := filepath.Glob(filepath.Join(r.SysRoot, "class/scsi_host/host*/scan"))
	for _, scan := range scans {
		_ = os.WriteFile(scan, []byte("- - -"), 0o200)
	}
}

// Glob is the sysfs pattern of the block device at volumeID's target.
func (r SCSIVolumeIDRule) Glob(volumeID string) (string, error) {
	if volumeID == "" {
		return "", ErrNoVolumeID
	}
	if n, err := strconv.Atoi(volumeID); err != nil || n < 0 {
		return "", fmt.Errorf("%w: %q", ErrBadVolumeID, volumeID)
	}
	return filepath.Join(r.SysRoot, "bus/scsi/devices", "*:0:"+volumeID+":0", "block", "*"), nil
}

// Resolve rescans and answers the /dev path of the one block device at
// the target volumeID names.
func (r SCSIVolumeIDRule) Resolve(volumeID string) (string, error) {
	glob, err := r.Glob(volumeID)
	if err != nil {
		return "", err
	}
	r.Rescan()
	matches, err := filepath.Glob(glob)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrBadVolumeID, glob)
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w: nothing matches %s", ErrNoSCSIDevice, glob)
	case 1:
		return "/dev/" + filepath.Base(matches[0]), nil
	}
	return "", fmt.Errorf("%w: %s matches %v", ErrAmbiguousTarget, glob, matches)
}
