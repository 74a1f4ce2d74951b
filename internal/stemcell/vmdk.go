package stemcell

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The hosted sparse extent header every VMDK with grains starts with (all
// little endian), from VMware's Virtual Disk Format 5.0 and QEMU's
// block/vmdk.c.
const (
	vmdkMagic              = "KDMV"
	vmdkHeaderSize         = 512
	vmdkSector             = 512
	vmdkVersionAt          = 4
	vmdkFlagsAt            = 8
	vmdkCapacityAt         = 12 // in sectors
	vmdkGrainSizeAt        = 20 // in sectors
	vmdkDescriptorOffsetAt = 28 // in sectors
	vmdkDescriptorSizeAt   = 36 // in sectors
	vmdkCompressionAt      = 77

	vmdkFlagCompressed = 1 << 16
	vmdkFlagMarkers    = 1 << 17
	vmdkDeflate        = 1

	// vmdkMaxHeaderArea is the most of the VMDK the check reads: the
	// header and the embedded descriptor (qemu-img puts it in sectors 1-20).
	vmdkMaxHeaderArea = 64 << 10
	// vmdkMaxCapacity keeps capacity*512 from overflowing.
	vmdkMaxCapacity = 1 << 54
)

// vmdkHeaderArea tells how many bytes from the VMDK's start checkVMDK needs:
// up to the end of the embedded descriptor, at most vmdkMaxHeaderArea and
// the file itself. head is at least the 512-byte header.
func vmdkHeaderArea(head []byte, size int64) int {
	offset := binary.LittleEndian.Uint64(head[vmdkDescriptorOffsetAt:])
	length := binary.LittleEndian.Uint64(head[vmdkDescriptorSizeAt:])
	want := uint64(vmdkMaxHeaderArea)
	if offset < want/vmdkSector && length < want/vmdkSector && (offset+length)*vmdkSector < want {
		want = (offset + length) * vmdkSector
	}
	if want < vmdkHeaderSize {
		want = vmdkHeaderSize
	}
	if size >= 0 && uint64(size) < want {
		return int(size)
	}
	return int(want)
}

// checkVMDK accepts a streamOptimized VMDK that stands alone and returns its
// capacity in bytes. QEMU follows a descriptor's parentFileNameHint to a
// file on the host that converts it, as it follows a qcow2 backing file: a
// stemcell naming one is refused, as is any extent but the file itself.
func checkVMDK(head []byte) (uint64, error) {
	if len(head) < vmdkHeaderSize || string(head[:4]) != vmdkMagic {
		return 0, errors.New("not a VMDK with a sparse extent header (no KDMV magic): a vSphere stemcell's disk is a streamOptimized VMDK")
	}
	if v := binary.LittleEndian.Uint32(head[vmdkVersionAt:]); v < 1 || v > 3 {
		return 0, fmt.Errorf("VMDK header version %d is not one QEMU reads (1 to 3)", v)
	}
	flags := binary.LittleEndian.Uint32(head[vmdkFlagsAt:])
	if flags&vmdkFlagCompressed == 0 || flags&vmdkFlagMarkers == 0 ||
		binary.LittleEndian.Uint16(head[vmdkCompressionAt:]) != vmdkDeflate {
		return 0, errors.New("the VMDK is not streamOptimized (no compressed grains with markers, deflate)")
	}
	capacity := binary.LittleEndian.Uint64(head[vmdkCapacityAt:])
	if capacity == 0 || capacity > vmdkMaxCapacity {
		return 0, fmt.Errorf("VMDK capacity of %d sectors is out of range", capacity)
	}
	if g := binary.LittleEndian.Uint64(head[vmdkGrainSizeAt:]); g < 8 || g > 1<<16 || g&(g-1) != 0 {
		return 0, fmt.Errorf("VMDK grain size of %d sectors is not a power of two from 8 to 65536", g)
	}
	desc, err := vmdkDescriptor(head)
	if err != nil {
		return 0, err
	}
	if err := checkVMDKDescriptor(desc, capacity); err != nil {
		return 0, err
	}
	return capacity * vmdkSector, nil
}

func vmdkDescriptor(head []byte) (string, error) {
	offset := binary.LittleEndian.Uint64(head[vmdkDescriptorOffsetAt:])
	length := binary.LittleEndian.Uint64(head[vmdkDescriptorSizeAt:])
	if offset == 0 || length == 0 {
		return "", errors.New("the VMDK has no embedded descriptor")
	}
	if offset >= vmdkMaxHeaderArea/vmdkSector || length > vmdkMaxHeaderArea/vmdkSector ||
		(offset+length)*vmdkSector > vmdkMaxHeaderArea {
		return "", fmt.Errorf("the VMDK's embedded descriptor (sectors %d+%d) lies beyond the first %d KiB", offset, length, vmdkMaxHeaderArea>>10)
	}
	end := (offset + length) * vmdkSector
	if uint64(len(head)) < end {
		return "", errors.New("the VMDK ends inside its embedded descriptor")
	}
	desc := head[offset*vmdkSector : end]
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		desc = desc[:i]
	}
	return string(desc), nil
}

// checkVMDKDescriptor reads the embedded descriptor as QEMU does: key=value
// lines and extent lines ("RW 131072 SPARSE \"disk.vmdk\"").
func checkVMDKDescriptor(desc string, capacity uint64) error {
	var createType string
	extents := 0
	for _, line := range strings.Split(desc, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if fields[0] != "RW" && fields[0] != "RDONLY" && fields[0] != "NOACCESS" {
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				return fmt.Errorf("the VMDK descriptor has a line QEMU would not read: %q", line)
			}
			key, value = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(value), `"`)
			switch key {
			case "createType":
				createType = value
			case "parentCID":
				if !strings.EqualFold(value, "ffffffff") {
					return fmt.Errorf("the VMDK has a parent (parentCID=%s): a stemcell's disk must stand alone", value)
				}
			case "parentFileNameHint":
				return fmt.Errorf("the VMDK names a parent file (%q): a stemcell's disk must stand alone", value)
			}
			continue
		}
		extents++
		if len(fields) < 4 || fields[2] != "SPARSE" || fields[1] != strconv.FormatUint(capacity, 10) || extents > 1 {
			return fmt.Errorf("the VMDK descriptor's extent %q is not the file's own %d sectors: a stemcell's disk is one streamOptimized extent", line, capacity)
		}
	}
	if createType != "streamOptimized" {
		return fmt.Errorf("the VMDK's createType is %q, not streamOptimized", createType)
	}
	if extents != 1 {
		return errors.New("the VMDK descriptor names no extent")
	}
	return nil
}
