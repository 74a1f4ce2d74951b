package guestcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Errors of the SCSI volume-id rule.
var (
	ErrNoVolumeID   = errors.New("disk hint has no volume_id (the SCSI target id)")
	ErrBadVolumeID  = errors.New("disk hint's volume_id is not a SCSI target number")
	ErrNoSCSIHost   = errors.New("no sd disk at SCSI target 0 (the root disk) names the SCSI host to search")
	ErrNoRescan     = errors.New("the SCSI host refused the rescan")
	ErrNoSCSIDevice = errors.New("no SCSI device at the hint's target on the root disk's host")
)

// SCSIVolumeIDRule resolves a disk the way the agent of vSphere stemcells
// does (DevicePathResolutionType "scsi", a hint with a volume_id and no
// id; bosh-agent's SCSIVolumeIDDevicePathResolver): the SCSI host is the
// one whose target 0 (channel 0, LUN 0) is an sd disk, the root disk
// (the last such in glob order, as the agent's loop keeps the last); that
// host is asked to rescan ("- - -" into its scan file); the disk is the
// first block device of <host>:0:<volume_id>:0. A disk on another host,
// channel or LUN is not found, as the agent would not find it. SysRoot is
// "/sys" in a guest and a directory tree in tests.
type SCSIVolumeIDRule struct{ SysRoot string }

// Host is the SCSI host number of the root disk.
func (r SCSIVolumeIDRule) Host() (string, error) {
	roots, _ := filepath.Glob(filepath.Join(r.SysRoot, "bus/scsi/devices/*:0:0:0/block/*"))
	host := ""
	for _, root := range roots {
		if strings.HasPrefix(filepath.Base(root), "sd") {
			hctl := filepath.Base(filepath.Dir(filepath.Dir(root)))
			host, _, _ = strings.Cut(hctl, ":")
		}
	}
	if host == "" {
		return "", ErrNoSCSIHost
	}
	return host, nil
}

// Resolve rescans the root disk's host and answers the /dev path of the
// block device at the target volumeID names.
func (r SCSIVolumeIDRule) Resolve(volumeID string) (string, error) {
	if volumeID == "" {
		return "", ErrNoVolumeID
	}
	if n, err := strconv.Atoi(volumeID); err != nil || n < 0 {
		return "", fmt.Errorf("%w: %q", ErrBadVolumeID, volumeID)
	}
	host, err := r.Host()
	if err != nil {
		return "", err
	}
	scan := filepath.Join(r.SysRoot, "class/scsi_host", "host"+host, "scan")
	if err := os.WriteFile(scan, []byte("- - -"), 0o200); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoRescan, err)
	}
	glob := filepath.Join(r.SysRoot, "bus/scsi/devices", host+":0:"+volumeID+":0", "block", "*")
	matches, _ := filepath.Glob(glob)
	if len(matches) == 0 {
		return "", fmt.Errorf("%w: nothing matches %s", ErrNoSCSIDevice, glob)
	}
	return "/dev/" + filepath.Base(matches[0]), nil
}

// VolumeIDOf is the volume_id by which the rule finds the block device
// name (sdc): its SCSI address's target, when the rule resolves that
// target back to this device; "" when the rule cannot reach it (another
// host than the root disk's, channel or LUN not 0, no SCSI address).
func (r SCSIVolumeIDRule) VolumeIDOf(name string) string {
	link, err := os.Readlink(filepath.Join(r.SysRoot, "block", name, "device"))
	if err != nil {
		return ""
	}
	parts := strings.Split(filepath.Base(link), ":")
	if len(parts) != 4 {
		return ""
	}
	if dev, err := r.Resolve(parts[2]); err != nil || dev != "/dev/"+name {
		return ""
	}
	return parts[2]
}
