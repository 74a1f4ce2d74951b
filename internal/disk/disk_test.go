package disk

import (
	"encoding/json"
	"testing"
)

type rawSource string

func (r rawSource) As(v any) error { return json.Unmarshal([]byte(r), v) }

func TestSerialIsTwentyUniqueCharacters(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		s := Serial(NewCID())
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

func TestTargetAt(t *testing.T) {
	cases := map[int]string{0: "vdc", 1: "vdd", 23: "vdz", 24: "vdaa", 25: "vdab", 50: "vdba"}
	for i, want := range cases {
		if got, err := TargetAt(i); err != nil || got != want {
			t.Errorf("TargetAt(%d) = %q, %v; want %q", i, got, err, want)
		}
	}
	if _, err := TargetAt(-1); err == nil {
		t.Error("TargetAt(-1) succeeded")
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
	if !ValidCID(NewCID()) || !ValidSnapshotCID(NewSnapshotCID()) {
		t.Fatal("fresh CIDs must be valid")
	}
	for _, bad := range []string{"disk-x", "../../etc", NewSnapshotCID(), "disk-" + NewCID()} {
		if ValidCID(bad) {
			t.Errorf("ValidCID(%q) = true", bad)
		}
	}
	if ValidSnapshotCID(NewCID()) {
		t.Error("a disk CID passes as a snapshot CID")
	}
}
