package disk

import (
	"encoding/json"
	"strings"
	"testing"
)

type rawSource string

func (r rawSource) As(v any) error { return json.Unmarshal([]byte(r), v) }

func TestSerialIsTwentyUniqueCharacters(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		s := Serial(LegacyCID())
		if len(s) != SerialLength {
			t.Fatalf("serial %q has %d characters", s, len(s))
		}
		if seen[s] {
			t.Fatalf("serial %q repeated", s)
		}
		seen[s] = true
	}
	if Serial("disk-a") != Serial("disk-a") {
		t.Fatal("Serial is not deterministic")
	}
}

// TestNewCIDsAreByIDNames: "virtio-" plus a unique 13-character serial,
// 20 characters that QEMU keeps whole and udev keeps as they are.
func TestNewCIDsAreByIDNames(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		cid := NewCID()
		serial := DiskSerial(cid)
		if len(cid) != SerialLength || ByIDPrefix+serial != cid || len(serial) != CIDSerialLength {
			t.Fatalf("CID %q, serial %q: want virtio-<serial>, %d characters", cid, serial, SerialLength)
		}
		if strings.Trim(serial, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("serial %q has characters outside [a-z2-7]", serial)
		}
		if seen[cid] {
			t.Fatalf("CID %q repeated", cid)
		}
		seen[cid] = true
	}
	legacy := LegacyCID()
	if DiskSerial(legacy) != Serial(legacy) {
		t.Errorf("a legacy CID's serial changed: %q, want the hash %q", DiskSerial(legacy), Serial(legacy))
	}
}

func TestParseProps(t *testing.T) {
	cases := []struct {
		in   string
		want Format
		ok   bool
	}{
		{`{}`, FormatQcow2, true},
		{`null`, FormatQcow2, true},
		{`{"format":"raw"}`, FormatRaw, true},
		{`{"format":"vmdk"}`, "", false},
		{`{"type":"ssd"}`, "", false},
	}
	for _, tc := range cases {
		got, err := ParseProps(rawSource(tc.in))
		if (err == nil) != tc.ok || (tc.ok && got.Format != tc.want) {
			t.Errorf("ParseProps(%s) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestCIDShapes(t *testing.T) {
	for _, good := range []string{NewCID(), LegacyCID(), "virtio-abcdefgh23456", "disk-11111111-2222-3333-4444-555555555555"} {
		if !ValidCID(good) {
			t.Errorf("ValidCID(%q) = false", good)
		}
	}
	if !ValidSnapshotCID(NewSnapshotCID()) {
		t.Fatal("fresh snapshot CIDs must be valid")
	}
	for _, bad := range []string{"disk-x", "../../etc", NewSnapshotCID(), "disk-" + LegacyCID(), "virtio-abcdefgh2345", "virtio-abcdefgh234567",
		"virtio-ABCDEFGH23456", "virtio-abcdefgh23450", "virtio-abc/../../xyz1", "scsi-abcdefgh23456"} {
		if ValidCID(bad) {
			t.Errorf("ValidCID(%q) = true", bad)
		}
	}
	if ValidSnapshotCID(NewCID()) || ValidSnapshotCID(LegacyCID()) {
		t.Error("a disk CID passes as a snapshot CID")
	}
}

func TestCheckSizeMiB(t *testing.T) {
	for size, ok := range map[int]bool{1: true, 102400: true, MaxSizeMiB: true, 0: false, -5: false, MaxSizeMiB + 1: false, 1 << 62: false} {
		if err := CheckSizeMiB("size", size); (err == nil) != ok {
			t.Errorf("CheckSizeMiB(%d) = %v; want ok %v", size, err, ok)
		}
	}
}
