package storage

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

func TestMetaRoundTripThroughPadding(t *testing.T) {
	tests := []struct {
		name string
		doc  MetaDocument
	}{
		{"empty", MetaDocument{}},
		{"disk", MetaDocument{Metadata: disk.Metadata{"deployment": "cf", "odd": "\"quoted\"\n\x00"}}},
		{"snapshot", MetaDocument{Metadata: disk.Metadata{"k": "v"}, SnapshotOf: "disk-aaaaaaaa-1111-2222-3333-444444444444"}},
		{"large", MetaDocument{Metadata: disk.Metadata{"big": strings.Repeat("y", 9000)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := encodeMeta(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			size := metaCapacity(len(raw))
			if size < uint64(len(raw)) || size%metaMinBytes != 0 {
				t.Fatalf("capacity %d for %d bytes", size, len(raw))
			}
			padded := padMeta(raw, size)
			if uint64(len(padded)) != size {
				t.Fatalf("padded to %d, want %d", len(padded), size)
			}
			got, err := decodeMeta(padded)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != metaVersion || got.SnapshotOf != tt.doc.SnapshotOf || fmt.Sprint(got.Metadata) != fmt.Sprint(orEmpty(tt.doc.Metadata)) {
				t.Errorf("decoded %+v, want %+v", got, tt.doc)
			}
		})
	}
}

func orEmpty(m disk.Metadata) disk.Metadata {
	if m == nil {
		return disk.Metadata{}
	}
	return m
}

func TestDecodeMeta(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr string
		wantLen int
	}{
		{"never written (zeros)", "\x00\x00\x00\x00", "", 0},
		{"padded with spaces", `{"version":1,"metadata":{"a":"b"}}      `, "", 1},
		{"padded with zeros", "{\"version\":1,\"metadata\":{\"a\":\"b\"}}\x00\x00", "", 1},
		{"newer layout", `{"version":99,"metadata":{}}`, "newer", 0},
		{"garbage", `{"version":1,`, "parsing", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMeta([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got.Metadata) != tt.wantLen || got.Metadata == nil {
				t.Errorf("decodeMeta = %+v, %v; want %d keys", got, err, tt.wantLen)
			}
		})
	}
}

func TestMetaVolumeNameIsNeverADiskCID(t *testing.T) {
	name := MetaVolumeName("disk-aaaaaaaa-1111-2222-3333-444444444444")
	if disk.ValidCID(name) || disk.ValidSnapshotCID(name) {
		t.Errorf("%s looks like a disk or snapshot CID", name)
	}
}
