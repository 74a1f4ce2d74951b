// Package disk holds what a BOSH persistent disk is, independent of the
// runtime: cloud properties, CIDs, and the serial + hint the agent resolves.
package disk

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cloudprops"
)

// SerialLength is the length QEMU keeps of a virtio-blk serial, and the
// length of the disk ID the agent globs for in /dev/disk/by-id.
const SerialLength = 20

// ByIDPrefix starts the /dev/disk/by-id link udev gives a virtio-blk disk:
// "virtio-<serial>".
const ByIDPrefix = "virtio-"

// CIDSerialLength is the serial length of a disk whose CID is its by-id
// name: ByIDPrefix plus the serial make exactly SerialLength characters, so
// the agent's older "*<CID[0:20]>" glob sees the whole CID.
const CIDSerialLength = SerialLength - len(ByIDPrefix)

var (
	// A disk CID is the name of the disk's link in the guest's
	// /dev/disk/by-id, so every bosh-agent variant resolves the disk by its
	// CID (bosh-contract.md §6).
	cidPattern = regexp.MustCompile(`^` + ByIDPrefix + `[a-z2-7]{13}$`)
	// CIDs minted before the by-id scheme; still accepted everywhere.
	legacyCIDPattern = regexp.MustCompile(`^disk-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	snapshotPattern  = regexp.MustCompile(`^snap-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	serialEncoding   = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

// NewCID makes a fresh disk CID: "virtio-" and a random 13-character serial
// (64 random bits) that becomes the disk's virtio-blk serial.
func NewCID() string {
	var b [8]byte
	rand.Read(b[:]) // since Go 1.24 it never returns an error
	return ByIDPrefix + serialEncoding.EncodeToString(b[:])
}

// LegacyCID makes a CID of the scheme before by-id names ("disk-<uuid>"),
// which the CPI still accepts; tests and fault injection use it.
func LegacyCID() string { return "disk-" + uuid.NewString() }

// ValidCID tells whether cid has the shape of a disk CID this CPI made,
// under either scheme.
func ValidCID(cid string) bool {
	return cidPattern.MatchString(cid) || legacyCIDPattern.MatchString(cid)
}

// NewSnapshotCID makes a fresh snapshot CID.
func NewSnapshotCID() string { return "snap-" + uuid.NewString() }

// ValidSnapshotCID tells whether cid has the shape of a snapshot CID.
func ValidSnapshotCID(cid string) bool { return snapshotPattern.MatchString(cid) }

// Serial is the virtio-blk serial for a device name (a VM CID plus a role,
// or a legacy disk CID). It is exactly SerialLength hex characters, so QEMU
// keeps all of it and the guest sees /dev/disk/by-id/virtio-<serial>.
func Serial(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])[:SerialLength]
}

// DiskSerial is the virtio-blk serial of a persistent disk: for a CID of
// the by-id scheme the part after "virtio-", so the guest's by-id link is
// the CID itself; for a legacy CID the hash rule it was attached with.
func DiskSerial(cid string) string {
	if cidPattern.MatchString(cid) {
		return strings.TrimPrefix(cid, ByIDPrefix)
	}
	return Serial(cid)
}

// Hint is what attach_disk returns (API v2) and what the agent settings carry.
type Hint struct {
	ID   string `json:"id"`
	Path string `json:"path"`
	// VolumeID is the SCSI target id the agent of vSphere and VirtualBox
	// stemcells looks a disk up by (its "scsi" device path resolution);
	// absent for the other hypervisors.
	VolumeID string `json:"volume_id,omitempty"`
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

// MaxSizeMiB bounds every disk size the CPI accepts: 1 EiB. Sizes arrive
// as MiB and become bytes; far beyond any pool, but well below where the
// conversion would wrap around into a tiny disk.
const MaxSizeMiB = 1 << 40

// CheckSizeMiB refuses sizes that are not positive or exceed MaxSizeMiB.
func CheckSizeMiB(what string, sizeMiB int) error {
	switch {
	case sizeMiB <= 0:
		return fmt.Errorf("%s must be positive, got %d MiB", what, sizeMiB)
	case sizeMiB > MaxSizeMiB:
		return fmt.Errorf("%s of %d MiB is more than the %d MiB (1 EiB) any disk can have", what, sizeMiB, MaxSizeMiB)
	}
	return nil
}
