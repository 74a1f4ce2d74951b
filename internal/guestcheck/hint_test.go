package guestcheck

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

const serial = "0123456789abcdef0123" // 20 characters, the hash serial of a legacy CID

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

const (
	byIDCID   = "virtio-abcdefgh23456" // a disk CID of the by-id scheme, 20 characters
	uuidCID   = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
	uuidByID  = "scsi-0a1b2c3d4e5f6789abcdef0123456789"
	legacyCID = "disk-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
)

func TestIDRuleGlobs(t *testing.T) {
	cases := []struct {
		rule IDRule
		id   string
		want string
	}{
		{OpenStackRule, byIDCID, byIDCID},
		{OpenStackRule, uuidCID, uuidByID},
		{OpenStackRule, legacyCID, legacyCID},
		{NoPatternRule, byIDCID, "*" + byIDCID},
		{NoPatternRule, uuidCID, "*" + uuidCID},
		{CutRule, byIDCID, "*" + byIDCID},
		{CutRule, legacyCID, "*" + legacyCID[:20]},
	}
	for _, tc := range cases {
		if got, err := tc.rule.Glob(tc.id); err != nil || got != tc.want {
			t.Errorf("%s: Glob(%q) = %q, %v; want %q", tc.rule.Name, tc.id, got, err, tc.want)
		}
	}
}

func TestIDRuleMatch(t *testing.T) {
	cases := []struct {
		name    string
		rule    IDRule
		id      string
		byID    []string
		want    string
		wantErr error
	}{
		{"exact name", OpenStackRule, byIDCID, []string{byIDCID, byIDCID + "-part1", "virtio-other0000000000"}, byIDCID, nil},
		{"full paths kept as given", OpenStackRule, byIDCID, []string{"/dev/disk/by-id/" + byIDCID}, "/dev/disk/by-id/" + byIDCID, nil},
		{"exact: a longer name is not the CID", OpenStackRule, byIDCID, []string{"x" + byIDCID}, "", ErrNoIDMatch},
		{"uuid transformed to scsi", OpenStackRule, uuidCID, []string{uuidByID, "virtio-" + uuidCID[:13]}, uuidByID, nil},
		{"suffix", NoPatternRule, byIDCID, []string{"x" + byIDCID, byIDCID + "-part1"}, "x" + byIDCID, nil},
		{"suffix: two disks", NoPatternRule, byIDCID, []string{byIDCID, "scsi-" + byIDCID}, "", ErrAmbiguousID},
		{"cut: only 20 characters count", CutRule, byIDCID + "tail", []string{byIDCID}, byIDCID, nil},
		{"cut: partition links never match", CutRule, byIDCID, []string{byIDCID, byIDCID + "-part1"}, byIDCID, nil},
		{"legacy CID matches no serial link", NoPatternRule, legacyCID, []string{"virtio-" + serial}, "", ErrNoIDMatch},
		{"no names", OpenStackRule, byIDCID, nil, "", ErrNoIDMatch},
		{"19 characters rejected", NoPatternRule, byIDCID[:19], []string{byIDCID[:19]}, "", ErrIDTooShort},
		{"empty id", CutRule, "", []string{byIDCID}, "", ErrNoID},
		{"malformed glob", NoPatternRule, "virtio-[abcdefghijklm", []string{byIDCID}, "", ErrBadGlob},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rule.Match(tc.id, tc.byID)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("%s: Match(%q, %v) = %q, %v; want %q, %v", tc.rule.Name, tc.id, tc.byID, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestDiskCIDsResolveByIDUnderEveryRule: a disk CID the CPI mints is the
// name udev gives the disk it attaches (the by-id link of its serial), so
// every agent variant finds that disk, and not its partition or another
// disk, by its CID. A legacy CID is found by none: that is why it changed.
func TestDiskCIDsResolveByIDUnderEveryRule(t *testing.T) {
	other := disk.NewCID()
	for i := 0; i < 500; i++ {
		cid := disk.NewCID()
		names := append(VirtioByIDNames(disk.DiskSerial(cid), []int{1}), VirtioByIDNames(disk.DiskSerial(other), []int{1})...)
		if got, err := MatchAll(cid, names); err != nil || got != cid {
			t.Fatalf("disk %s with by-id names %v: MatchAll = %q, %v; want the CID itself", cid, names, got, err)
		}
	}
	legacy := disk.LegacyCID()
	names := VirtioByIDNames(disk.DiskSerial(legacy), []int{1})
	for _, r := range IDRules {
		if got, err := r.Match(legacy, names); !errors.Is(err, ErrNoIDMatch) {
			t.Errorf("%s: legacy CID %s matched %q, %v; want no match", r.Name, legacy, got, err)
		}
	}
}

func TestMatchAllNeedsEveryRule(t *testing.T) {
	// The suffix rules find "x<CID>", the exact one does not.
	if _, err := MatchAll(byIDCID, []string{"x" + byIDCID}); !errors.Is(err, ErrNoIDMatch) {
		t.Errorf("MatchAll with only a longer name: %v; want ErrNoIDMatch", err)
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

func TestResolve(t *testing.T) {
	cases := []struct {
		name    string
		id      string
		hint    Hint
		byID    []string
		exists  func(string) bool
		want    string
		wantErr error
	}{
		{"by CID wins over path", byIDCID, Hint{ID: "ignored", Path: "/dev/vdz"}, []string{byIDCID}, existing("/dev/vdz"), byIDCID, nil},
		{"the hint's id is never used", byIDCID, Hint{ID: serial, Path: "/dev/vdc"}, []string{"virtio-" + serial}, existing("/dev/vdc"), "/dev/vdc", nil},
		{"no id match falls back to path", byIDCID, Hint{Path: "/dev/vdc"}, nil, existing("/dev/vdc"), "/dev/vdc", nil},
		{"ephemeral: no ID, path only", "", Hint{ID: serial, Path: "/dev/vdb"}, []string{"virtio-" + serial}, existing("/dev/vdb"), "/dev/vdb", nil},
		{"short id falls back to path", "short", Hint{Path: "/dev/vdc"}, []string{"virtio-short"}, existing("/dev/vdc"), "/dev/vdc", nil},
		{"string hint: sd mapped to vd", "", Hint{Path: "/dev/sdc"}, nil, existing("/dev/vdc", "/dev/sdc"), "/dev/vdc", nil},
		{"sd mapped to xvd first", "", Hint{Path: "/dev/sdc"}, nil, existing("/dev/xvdc", "/dev/vdc"), "/dev/xvdc", nil},
		{"sd kept when nothing else exists", "", Hint{Path: "/dev/sdc"}, nil, existing("/dev/sdc"), "/dev/sdc", nil},
		{"path missing", byIDCID, Hint{Path: "/dev/vdc"}, nil, existing(), "", ErrNoDevice},
		{"no path, no id match", byIDCID, Hint{}, nil, existing("/dev/vdc"), "", ErrNoPath},
		{"nil exists means nothing exists", "", Hint{Path: "/dev/vdc"}, nil, nil, "", ErrNoDevice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OpenStackRule.Resolve(tc.id, tc.hint, tc.byID, tc.exists)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Errorf("Resolve(%q, %+v) = %q, %v; want %q, %v", tc.id, tc.hint, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
