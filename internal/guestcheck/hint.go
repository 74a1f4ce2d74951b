// Package guestcheck holds the rules a BOSH agent applies inside a guest,
// as pure functions: how a disk hint resolves to a device (the agent's
// "virtio" device path resolution) and how udev names virtio-blk disks in
// /dev/disk/by-id. The test stemcell's agent runs them in the guest; the
// host-side suites apply the same rules to what the guest reported.
package guestcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
)

// IDLength is how much of a hint's id the agent globs for: it rejects
// shorter ids and matches "*<id[0:20]>" in /dev/disk/by-id.
const IDLength = 20

// Errors of the id rule; the path rule runs after any of them.
var (
	ErrNoID        = errors.New("disk hint has no id")
	ErrIDTooShort  = fmt.Errorf("disk id is shorter than %d characters", IDLength)
	ErrNoIDMatch   = errors.New("no /dev/disk/by-id name matches the disk id")
	ErrAmbiguousID = errors.New("more than one /dev/disk/by-id name matches the disk id")
	ErrNoPath      = errors.New("disk hint has no path")
	ErrNoDevice    = errors.New("no device at the hint's path or its mapped forms")
)

// Hint is a disk hint as the settings and attach_disk carry it.
type Hint struct {
	ID   string `json:"id,omitempty"`
	Path string `json:"path,omitempty"`
}

// ParseHint accepts both forms the agent accepts: a bare device path
// string, or an object with id and path.
func ParseHint(raw json.RawMessage) (Hint, error) {
	var p string
	if err := json.Unmarshal(raw, &p); err == nil {
		return Hint{Path: p}, nil
	}
	var h Hint
	if err := json.Unmarshal(raw, &h); err != nil {
		return Hint{}, fmt.Errorf("disk hint %s is neither a path nor an {id, path} object: %w", raw, err)
	}
	return h, nil
}

// MatchID applies the agent's id rule to a list of by-id names (base names
// or full /dev/disk/by-id paths): the glob "*<id[0:20]>" must match exactly
// one of them. It returns that name as given.
func MatchID(id string, byIDNames []string) (string, error) {
	if id == "" {
		return "", ErrNoID
	}
	if len(id) < IDLength {
		return "", fmt.Errorf("%w: %q", ErrIDTooShort, id)
	}
	want := id[:IDLength]
	var matches []string
	for _, name := range byIDNames {
		if strings.HasSuffix(path.Base(name), want) {
			matches = append(matches, name)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w: *%s", ErrNoIDMatch, want)
	case 1:
		return matches[0], nil
	default:
		return "", fmt.Errorf("%w: *%s matches %s", ErrAmbiguousID, want, strings.Join(matches, ", "))
	}
}

// PathCandidates are the device paths the agent's mapped resolver tries
// for a hint path, in its order: /dev/sdX is looked for as /dev/xvdX
// (Xen), /dev/vdX (KVM) and /dev/sdX; any other path only as itself.
func PathCandidates(p string) []string {
	suffix, mapped := strings.CutPrefix(p, "/dev/sd")
	if !mapped {
		return []string{p}
	}
	return []string{"/dev/xvd" + suffix, "/dev/vd" + suffix, "/dev/sd" + suffix}
}

// MapPath applies the agent's path rule: the first candidate that exists.
func MapPath(p string, exists func(string) bool) (string, error) {
	if p == "" {
		return "", ErrNoPath
	}
	for _, c := range PathCandidates(p) {
		if exists(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: %s", ErrNoDevice, p)
}

// ResolveHint is the agent's virtio resolver: the id rule over the by-id
// names, and, when that fails for any reason, the path rule. It returns
// the matching by-id name, or the device path found by the path rule.
// exists tells which device paths exist; nil means none does.
func ResolveHint(h Hint, byIDNames []string, exists func(string) bool) (string, error) {
	match, idErr := MatchID(h.ID, byIDNames)
	if idErr == nil {
		return match, nil
	}
	if exists == nil {
		exists = func(string) bool { return false }
	}
	dev, pathErr := MapPath(h.Path, exists)
	if pathErr != nil {
		return "", fmt.Errorf("resolving disk hint %+v: by id: %w; by path: %w", h, idErr, pathErr)
	}
	return dev, nil
}
