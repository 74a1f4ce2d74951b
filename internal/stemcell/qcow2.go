package stemcell

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// qcow2 header fields (all big endian), from QEMU's docs/interop/qcow2.txt.
const (
	qcow2Magic             = "QFI\xfb"
	qcow2VersionAt         = 4
	qcow2BackingOffsetAt   = 8
	qcow2ClusterBitsAt     = 20
	qcow2VirtualSizeAt     = 24
	qcow2CryptMethodAt     = 32
	qcow2MinimumHeaderSize = 72 // version 2; also where version 3's fields start
	qcow2IncompatibleAt    = 72
	qcow2HeaderLengthAt    = 100
	qcow2V3HeaderSize      = 104

	// Incompatible feature bit 2: the guest's data lives in another file,
	// named by the data file header extension.
	qcow2ExternalDataBit = 1 << 2
	// Header extension types.
	qcow2ExtEnd      = 0x00000000
	qcow2ExtDataFile = 0x44415441 // "DATA"

	// QEMU takes cluster_bits 9..21; the header and its extensions must
	// fit in the first cluster.
	qcow2MinClusterBits = 9
	qcow2MaxClusterBits = 21
	// qcow2MaxHeaderArea is the most of root.img the header check reads.
	qcow2MaxHeaderArea = 1 << qcow2MaxClusterBits
)

// qcow2HeaderArea tells how many bytes of a qcow2 image, from its start,
// checkQcow2 needs: the first cluster (the header and its extensions), at
// most the image itself. head is at least the fixed version 2 header.
func qcow2HeaderArea(head []byte, imageSize int64) int {
	bits := binary.BigEndian.Uint32(head[qcow2ClusterBitsAt:])
	n := int64(qcow2MaxHeaderArea)
	if bits >= qcow2MinClusterBits && bits <= qcow2MaxClusterBits {
		n = 1 << bits
	}
	if imageSize < n {
		n = imageSize
	}
	return int(n)
}

// checkQcow2 reads a qcow2 header (the image's first cluster, or as much of
// it as there is) and answers the guest's disk size. It refuses what would
// make QEMU open a file of the image's choosing on the host, a backing file
// or an external data file, and what QEMU itself could not open, so that
// the image is refused when the stemcell is imported rather than when a VM
// boots from it.
func checkQcow2(head []byte) (virtualSize uint64, err error) {
	if len(head) < qcow2MinimumHeaderSize {
		return 0, fmt.Errorf("qcow2 header is truncated")
	}
	// A backing file in a stemcell would make QEMU open a path of the
	// image's choosing on the host: refuse it.
	if binary.BigEndian.Uint64(head[qcow2BackingOffsetAt:]) != 0 {
		return 0, fmt.Errorf("qcow2 image names a backing file; stemcells must be standalone")
	}
	bits := binary.BigEndian.Uint32(head[qcow2ClusterBitsAt:])
	if bits < qcow2MinClusterBits || bits > qcow2MaxClusterBits {
		return 0, fmt.Errorf("qcow2 cluster_bits %d is outside %d..%d", bits, qcow2MinClusterBits, qcow2MaxClusterBits)
	}
	if m := binary.BigEndian.Uint32(head[qcow2CryptMethodAt:]); m != 0 {
		return 0, fmt.Errorf("qcow2 image is encrypted (crypt_method %d); stemcells are not", m)
	}
	extStart := uint64(qcow2MinimumHeaderSize)
	version := binary.BigEndian.Uint32(head[qcow2VersionAt:])
	switch version {
	case 2:
	case 3:
		if len(head) < qcow2V3HeaderSize {
			return 0, fmt.Errorf("qcow2 version 3 header is truncated")
		}
		extStart = uint64(binary.BigEndian.Uint32(head[qcow2HeaderLengthAt:]))
		if extStart < qcow2V3HeaderSize {
			return 0, fmt.Errorf("qcow2 header_length %d is less than %d", extStart, qcow2V3HeaderSize)
		}
	default:
		return 0, fmt.Errorf("qcow2 version %d is not supported (only 2 and 3)", version)
	}
	// The extensions first: a data file extension is refused naming the file.
	if err := checkQcow2Extensions(head, extStart, uint64(1)<<bits); err != nil {
		return 0, err
	}
	if version == 3 && binary.BigEndian.Uint64(head[qcow2IncompatibleAt:])&qcow2ExternalDataBit != 0 {
		return 0, fmt.Errorf("qcow2 image keeps its data in an external data file; stemcells must be standalone")
	}
	virtualSize = binary.BigEndian.Uint64(head[qcow2VirtualSizeAt:])
	if virtualSize == 0 {
		return 0, fmt.Errorf("qcow2 image has a virtual size of 0")
	}
	return virtualSize, nil
}

// checkQcow2Extensions walks the header extensions from start to their end
// marker, which must lie within the first cluster: a data file extension is
// refused even without the feature bit that makes QEMU use it.
func checkQcow2Extensions(head []byte, start, clusterSize uint64) error {
	for off := start; ; {
		if off+8 > clusterSize {
			return fmt.Errorf("qcow2 header extensions run past the first cluster (%d bytes)", clusterSize)
		}
		if off+8 > uint64(len(head)) {
			return fmt.Errorf("qcow2 header extensions are truncated at byte %d", off)
		}
		typ := binary.BigEndian.Uint32(head[off:])
		length := uint64(binary.BigEndian.Uint32(head[off+4:]))
		if typ == qcow2ExtEnd {
			return nil
		}
		data := off + 8
		if data+length > clusterSize || data+length > uint64(len(head)) {
			return fmt.Errorf("qcow2 header extension 0x%08x of %d bytes at byte %d runs past the header", typ, length, off)
		}
		if typ == qcow2ExtDataFile {
			return fmt.Errorf("qcow2 image names an external data file %s; stemcells must be standalone", quoteName(head[data:data+length]))
		}
		off = data + (length+7)&^7
	}
}

// quoteName quotes a file name taken from an image, cut to 256 bytes, so
// that a hostile name cannot forge or flood the error message.
func quoteName(name []byte) string {
	const most = 256
	if len(name) > most {
		return strconv.Quote(string(name[:most])) + "..."
	}
	return strconv.Quote(string(name))
}
