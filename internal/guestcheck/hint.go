// Package guestcheck holds the rules a BOSH agent applies inside a guest,
// as pure functions: how a disk is resolved to a device (the agent's
// "virtio" device path resolution: by its disk CID in /dev/disk/by-id,
// then by the hint's path) and how udev names virtio-blk disks in
// /dev/disk/by-id. The test stemcell's agent runs them in the guest; the
// host-side suites apply the same rules to what the guest reported.
package guestcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// IDLength is the shortest disk ID the agent's by-id step accepts, and how
// much of it agents before 2023 glob for.
const IDLength = 20

// Errors of the id rule; the path rule runs after any of them.
var (
	ErrNoID        = errors.New("disk has no ID (the agent's DiskSettings.ID, its disk CID)")
	ErrIDTooShort  = fmt.Errorf("disk ID is shorter than %d characters", IDLength)
	ErrBadGlob     = errors.New("disk ID makes a malformed glob")
	ErrNoIDMatch   = errors.New("no /dev/disk/by-id name matches the disk ID")
	ErrAmbiguousID = errors.New("more than one /dev/disk/by-id name matches the disk ID")
	ErrNoPath      = errors.New("disk hint has no path")
	ErrNoDevice    = errors.New("no device at the hint's path or its mapped forms")
)

// Hint is a disk hint as the settings and attach_disk carry it. The agent
// keeps its id only as DeviceID, which the virtio resolver never reads:
// a persistent disk is looked up by its disk CID, the ephemeral disk by
// its path alone.
type Hint struct {
	ID   string `json:"id,omitempty"`
	Path string `json:"path,omitempty"`
	// VolumeID is the SCSI target a disk on a SCSI bus sits at, which the
	// vSphere agent's "scsi" resolution reads (SCSIVolumeIDRule).
	VolumeID string `json:"volume_id,omitempty"`
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

// IDRule is one variant of the by-id step of bosh-agent's virtio resolver
// (infrastructure/devicepathresolver/id_device_path_resolver.go), applied
// to the disk's ID: for a persistent disk its disk CID.
type IDRule struct {
	Name string
	// TransformPattern and TransformReplacement are agent.json's
	// DiskIDTransformPattern and DiskIDTransformReplacement. With a
	// pattern, an ID it matches is transformed, any other is used as it is,
	// and the glob is exactly that, without a wildcard.
	TransformPattern, TransformReplacement string
	// CutTo20 is the rule of agents before 2023: "*<ID[0:20]>".
	CutTo20 bool
}

// The three variants of the id rule a stemcell may carry
// (bosh-contract.md §6).
var (
	// OpenStackRule is today's OpenStack stemcells' agent.json.
	OpenStackRule = IDRule{
		Name:                 "agent.json with DiskIDTransformPattern (current OpenStack stemcells)",
		TransformPattern:     `^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$`,
		TransformReplacement: "scsi-${1}${2}${3}${4}${5}",
	}
	// NoPatternRule is an agent.json without a pattern: "*<ID>".
	NoPatternRule = IDRule{Name: "agent.json without DiskIDTransformPattern"}
	// CutRule is agents before 2023: "*<ID[0:20]>".
	CutRule = IDRule{Name: "agents before 2023 (ID cut to 20 characters)", CutTo20: true}
	// IDRules are all three.
	IDRules = []IDRule{OpenStackRule, NoPatternRule, CutRule}
)

// Glob is the pattern the rule looks for in /dev/disk/by-id for a disk ID.
func (r IDRule) Glob(diskID string) (string, error) {
	switch {
	case diskID == "":
		return "", ErrNoID
	case len(diskID) < IDLength:
		return "", fmt.Errorf("%w: %q", ErrIDTooShort, diskID)
	case r.CutTo20:
		return "*" + diskID[:IDLength], nil
	case r.TransformPattern == "":
		return "*" + diskID, nil
	}
	re, err := regexp.Compile(r.TransformPattern)
	if err != nil {
		return "", fmt.Errorf("DiskIDTransformPattern %q: %w", r.TransformPattern, err)
	}
	if re.MatchString(diskID) {
		return re.ReplaceAllString(diskID, r.TransformReplacement), nil
	}
	return diskID, nil
}

// Match applies the rule to a list of by-id names (base names or full
// /dev/disk/by-id paths): its glob must match exactly one of them. It
// returns that name as given.
func (r IDRule) Match(diskID string, byIDNames []string) (string, error) {
	glob, err := r.Glob(diskID)
	if err != nil {
		return "", err
	}
	var matches []string
	for _, name := range byIDNames {
		ok, err := path.Match(glob, path.Base(name))
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadGlob, glob, err)
		}
		if ok {
			matches = append(matches, name)
		}
	}
	switch len(matches) {
	case 0:
		return "", fmt.Errorf("%w: %s", ErrNoIDMatch, glob)
	case 1:
		return matches[0], nil
	default:
		return "", fmt.Errorf("%w: %s matches %s", ErrAmbiguousID, glob, strings.Join(matches, ", "))
	}
}

// MatchAll applies every rule of IDRules: each must match, and all the
// same name, for the disk to be found by id whatever agent the stemcell
// carries. It returns that name.
func MatchAll(diskID string, byIDNames []string) (string, error) {
	var found string
	for _, r := range IDRules {
		name, err := r.Match(diskID, byIDNames)
		if err != nil {
			return "", fmt.Errorf("%s: %w", r.Name, err)
		}
		if found != "" && name != found {
			return "", fmt.Errorf("%s: matches %s, another rule %s", r.Name, name, found)
		}
		found = name
	}
	return found, nil
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

// Resolve is the agent's virtio resolver under rule: the id rule for the
// disk's ID (a persistent disk's CID; "" for the ephemeral disk) over the
// by-id names and, when that fails for any reason, the path rule on the
// hint. It returns the matching by-id name, or the device path found by
// the path rule. exists tells which device paths exist; nil means none does.
func (r IDRule) Resolve(diskID string, h Hint, byIDNames []string, exists func(string) bool) (string, error) {
	match, idErr := r.Match(diskID, byIDNames)
	if idErr == nil {
		return match, nil
	}
	if exists == nil {
		exists = func(string) bool { return false }
	}
	dev, pathErr := MapPath(h.Path, exists)
	if pathErr != nil {
		return "", fmt.Errorf("resolving disk %q (hint %+v): by id: %w; by path: %w", diskID, h, idErr, pathErr)
	}
	return dev, nil
}
