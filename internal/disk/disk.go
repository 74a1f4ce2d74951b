// Package disk holds what a BOSH persistent disk is, independent of the
// runtime: cloud properties, CIDs, and the serial + hint the agent resolves.
package disk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"

	"github.com/google/uuid"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cloudprops"
)

// SerialLength is the length QEMU keeps of a virtio-blk serial, and the
// length of the disk ID the agent globs for in /dev/disk/by-id.
const SerialLength = 20

var (
	cidPattern      = regexp.MustCompile(`^disk-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	snapshotPattern = regexp.MustCompile(`^snap-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// NewCID makes a fresh disk CID.
func NewCID() string { return "disk-" + uuid.NewString() }

// ValidCID tells whether cid has the shape of a disk CID this CPI made.
func ValidCID(cid string) bool { return cidPattern.MatchString(cid) }

// NewSnapshotCID makes a fresh snapshot CID.
func NewSnapshotCID() string { return "snap-" + uuid.NewString() }

// ValidSnapshotCID tells whether cid has the shape of a snapshot CID.
func ValidSnapshotCID(cid string) bool { return snapshotPattern.MatchString(cid) }

// Serial is the virtio-blk serial for a device name (a disk CID, or a VM CID
// plus a role). It is exactly SerialLength hex characters, so QEMU keeps all
// of it and the guest sees /dev/disk/by-id/virtio-<serial>; the agent's
// "*<id[0:20]>" glob then matches that one link and no partition link.
func Serial(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])[:SerialLength]
}

// Hint is what attach_disk returns (API v2) and what the agent settings carry.
type Hint struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

// HintFor is the hint for a disk with the given serial at a device target.
func HintFor(serial, target string) Hint {
	return Hint{ID: serial, Path: "/dev/" + target}
}

// Format is a volume format.
type Format string

const (
	FormatQcow2 Format = "qcow2"
	FormatRaw   Format = "raw"
)

// Props are the disk cloud_properties we accept.
type Props struct {
	Format Format `json:"format"`
}

// ParseProps decodes and validates disk cloud_properties.
func ParseProps(src cloudprops.Source) (Props, error) {
	props := Props{Format: FormatQcow2}
	if err := cloudprops.Decode(src, &props, "disk cloud_properties"); err != nil {
		return Props{}, err
	}
	switch props.Format {
	case FormatQcow2, FormatRaw:
	case "":
		props.Format = FormatQcow2
	default:
		return Props{}, fmt.Errorf("disk cloud_properties: 'format' must be qcow2 or raw, got '%s'", props.Format)
	}
	return props, nil
}

// Spec is what a backend needs to create a disk.
type Spec struct {
	CID     string
	SizeMiB int
	Format  Format
}

// Metadata is what set_disk_metadata / snapshot_disk pass, flattened.
type Metadata map[string]string

// firstPersistentTarget follows the root (vda) and ephemeral (vdb) disks.
const firstPersistentTarget = 2

// TargetAt is the i-th persistent disk target: vdc, vdd, ..., vdz, vdaa, ...
func TargetAt(i int) (string, error) {
	n := i + firstPersistentTarget
	if i < 0 || n >= 26+26*26 {
		return "", fmt.Errorf("no device target for persistent disk number %d", i)
	}
	if n < 26 {
		return "vd" + string(rune('a'+n)), nil
	}
	n -= 26
	return "vd" + string(rune('a'+n/26)) + string(rune('a'+n%26)), nil
}
