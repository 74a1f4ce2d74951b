// Package stemcell reads OpenStack/KVM stemcell images: the `image` tgz that
// holds root.img (qcow2 or raw). It streams: nothing is unpacked to disk.
package stemcell

import (
	"io"
	"regexp"

	"github.com/google/uuid"
)

var cidPattern = regexp.MustCompile(`^sc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// NewCID makes a fresh stemcell CID.
func NewCID() string { return "sc-" + uuid.NewString() }

// ValidCID tells whether cid has the shape of a stemcell CID this CPI made.
func ValidCID(cid string) bool { return cidPattern.MatchString(cid) }

// Format of root.img.
type Format string

const (
	FormatQcow2 Format = "qcow2"
	FormatRaw   Format = "raw"
)

// Image is root.img as a stream, positioned at its first byte.
type Image struct {
	Format Format
	// Size is the number of bytes Reader yields.
	Size int64
	// VirtualSize is the disk size the guest sees, in bytes.
	VirtualSize uint64
	Reader      io.Reader
	closer      io.Closer
}

// Close releases the underlying file.
func (i *Image) Close() error {
	if i.closer == nil {
		return nil
	}
	return i.closer.Close()
}
