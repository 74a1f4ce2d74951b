package main

import (
	"encoding/binary"
	"testing"
)

func TestSinglePartitionMBR(t *testing.T) {
	cases := []struct {
		sectors  uint64
		wantSize uint32
		wantErr  bool
	}{
		{131072, 131072 - 2048, false}, // 64 MiB
		{2049, 1, false},               // the smallest that fits
		{1 << 40, 0xFFFFFFFF, false},   // beyond what MBR can count
		{2048, 0, true},                // nothing left after 1 MiB
		{0, 0, true},
	}
	for _, tc := range cases {
		mbr, err := singlePartitionMBR(tc.sectors, 0xDEADBEEF)
		if (err != nil) != tc.wantErr {
			t.Errorf("%d sectors: error %v; want error %t", tc.sectors, err, tc.wantErr)
			continue
		}
		if tc.wantErr {
			continue
		}
		entry := mbr[446:462]
		if mbr[510] != 0x55 || mbr[511] != 0xAA {
			t.Errorf("%d sectors: no boot signature", tc.sectors)
		}
		if entry[4] != 0x83 {
			t.Errorf("%d sectors: partition type %#x; want 0x83", tc.sectors, entry[4])
		}
		if start := binary.LittleEndian.Uint32(entry[8:]); start != 2048 {
			t.Errorf("%d sectors: start %d; want 2048", tc.sectors, start)
		}
		if size := binary.LittleEndian.Uint32(entry[12:]); size != tc.wantSize {
			t.Errorf("%d sectors: size %d; want %d", tc.sectors, size, tc.wantSize)
		}
		if id := binary.LittleEndian.Uint32(mbr[440:]); id != 0xDEADBEEF {
			t.Errorf("disk id %#x", id)
		}
		for i := 462; i < 510; i++ {
			if mbr[i] != 0 {
				t.Fatalf("%d sectors: partition entries 2-4 are not empty", tc.sectors)
			}
		}
	}
}
