package guestcheck

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

const serial = "0123456789abcdef0123" // 20 characters, as the CPI makes them

func TestParseHint(t *testing.T) {
	cases := []struct {
		raw     string
		want    Hint
		wantErr bool
	}{
		{`"/dev/vdc"`, Hint{Path: "/dev/vdc"}, false},
		{`{"id":"` + serial + `","path":"/dev/vdc"}`, Hint{ID: serial, Path: "/dev/vdc"}, false},
		{`{"id":"` + serial + `"}`, Hint{ID: serial}, false},
		{`42`, Hint{}, true},
		{`[]`, Hint{}, true},
	}
	for _, tc := range cases {
		got, err := ParseHint(json.RawMessage(tc.raw))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseHint(%s) = %+v, %v; want %+v, error %t", tc.raw, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestMatchID(t *testing.T) {
	cases := []struct {
		name    string
		id      string
		byID    []string
		want    string
		wantErr error
	}{
		{"exactly one", serial, []string{"virtio-" + serial, "virtio-other0000000000000000"}, "virtio-" + serial, nil},
		{"full paths kept as given", serial, []string{"/dev/disk/by-id/virtio-" + serial}, "/dev/disk/by-id/virtio-" + serial, nil},
		{"only the first 20 characters count", serial + "-tail-ignored", []string{"virtio-" + serial}, "virtio-" + serial, nil},
		{"partition links never match", serial, []string{"virtio-" + serial, "virtio-" + serial + "-part1"}, "virtio-" + serial, nil},
		{"scsi names match by suffix", serial, []string{"scsi-0QEMU_QEMU_HARDDISK_" + serial}, "scsi-0QEMU_QEMU_HARDDISK_" + serial, nil},
		{"two disks with one serial", serial, []string{"virtio-" + serial, "scsi-0QEMU_QEMU_HARDDISK_" + serial}, "", ErrAmbiguousID},
		{"none", serial, []string{"virtio-ffffffffffffffffffff"}, "", ErrNoIDMatch},
		{"no names", serial, nil, "", ErrNoIDMatch},
		{"19 characters rejected", serial[:19], []string{"virtio-" + serial[:19]}, "", ErrIDTooShort},
		{"empty id", "", []string{"virtio-" + serial}, "", ErrNoID},
		{"a prefix is not a suffix", serial, []string{"virtio-" + serial + "x"}, "", ErrNoIDMatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MatchID(tc.id, tc.byID)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("MatchID(%q, %v) = %q, %v; want %q, %v", tc.id, tc.byID, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestPathCandidates(t *testing.T) {
	cases := []struct {
		path string
		want []string
	}{
		{"/dev/sdc", []string{"/dev/xvdc", "/dev/vdc", "/dev/sdc"}},
		{"/dev/sdaa", []string{"/dev/xvdaa", "/dev/vdaa", "/dev/sdaa"}},
		{"/dev/vdc", []string{"/dev/vdc"}},
		{"/dev/xvdb", []string{"/dev/xvdb"}},
	}
	for _, tc := range cases {
		if got := PathCandidates(tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("PathCandidates(%q) = %v; want %v", tc.path, got, tc.want)
		}
	}
}

func existing(paths ...string) func(string) bool {
	set := map[string]bool{}
	for _, p := range paths {
		set[p] = true
	}
	return func(p string) bool { return set[p] }
}

func TestResolveHint(t *testing.T) {
	cases := []struct {
		name    string
		hint    Hint
		byID    []string
		exists  func(string) bool
		want    string
		wantErr error
	}{
		{"by id wins over path", Hint{ID: serial, Path: "/dev/vdz"}, []string{"virtio-" + serial}, existing("/dev/vdz"), "virtio-" + serial, nil},
		{"no id match falls back to path", Hint{ID: serial, Path: "/dev/vdc"}, nil, existing("/dev/vdc"), "/dev/vdc", nil},
		{"ambiguous id falls back to path", Hint{ID: serial, Path: "/dev/vdc"}, []string{"a-" + serial, "b-" + serial}, existing("/dev/vdc"), "/dev/vdc", nil},
		{"short id falls back to path", Hint{ID: "short", Path: "/dev/vdc"}, []string{"virtio-short"}, existing("/dev/vdc"), "/dev/vdc", nil},
		{"string hint: sd mapped to vd", Hint{Path: "/dev/sdc"}, nil, existing("/dev/vdc", "/dev/sdc"), "/dev/vdc", nil},
		{"sd mapped to xvd first", Hint{Path: "/dev/sdc"}, nil, existing("/dev/xvdc", "/dev/vdc"), "/dev/xvdc", nil},
		{"sd kept when nothing else exists", Hint{Path: "/dev/sdc"}, nil, existing("/dev/sdc"), "/dev/sdc", nil},
		{"path missing", Hint{ID: serial, Path: "/dev/vdc"}, nil, existing(), "", ErrNoDevice},
		{"no path, no id match", Hint{ID: serial}, nil, existing("/dev/vdc"), "", ErrNoPath},
		{"nil exists means nothing exists", Hint{Path: "/dev/vdc"}, nil, nil, "", ErrNoDevice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveHint(tc.hint, tc.byID, tc.exists)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("ResolveHint(%+v) = %q, %v; want %q, %v", tc.hint, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
