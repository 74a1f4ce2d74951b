package main

import (
	"encoding/binary"
	"fmt"
)

const (
	sectorSize          = 512
	firstPartitionStart = 2048 // 1 MiB, where partitioning tools start
	linuxPartitionType  = 0x83
)

// singlePartitionMBR is the table the agent gives a new data disk: one
// Linux partition from 1 MiB to the end, as the BOSH agent partitions a
// persistent disk before making its filesystem.
func singlePartitionMBR(diskSectors uint64, diskID uint32) ([sectorSize]byte, error) {
	var mbr [sectorSize]byte
	if diskSectors <= firstPartitionStart {
		return mbr, fmt.Errorf("disk of %d sectors is too small for a partition at sector %d", diskSectors, firstPartitionStart)
	}
	size := diskSectors - firstPartitionStart
	if size > 0xFFFFFFFF { // an MBR entry counts sectors in 32 bits
		size = 0xFFFFFFFF
	}
	binary.LittleEndian.PutUint32(mbr[440:], diskID)
	entry := mbr[446:462]
	// CHS fields say "use LBA" (the maximum), as modern tools write them.
	copy(entry[1:4], []byte{0xFE, 0xFF, 0xFF})
	entry[4] = linuxPartitionType
	copy(entry[5:8], []byte{0xFE, 0xFF, 0xFF})
	binary.LittleEndian.PutUint32(entry[8:], firstPartitionStart)
	binary.LittleEndian.PutUint32(entry[12:], uint32(size))
	mbr[510], mbr[511] = 0x55, 0xAA
	return mbr, nil
}
