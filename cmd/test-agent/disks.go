package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

const (
	byIDDir      = "/dev/disk/by-id"
	pollInterval = 500 * time.Millisecond
	markerName   = "bosh-test-agent-marker.json"
	dataMount    = "/run/data"
	// How much of a disk must read as zeros for it to count as new.
	emptyProbeBytes = 1 << 20
	ioctlBLKRRPART  = 0x125F // re-read the partition table
)

// diskNamePattern matches whole disks that can hold data: virtio, SCSI or
// SATA, and Xen names. CD-ROMs (sr*) and partitions do not match.
var diskNamePattern = regexp.MustCompile(`^(vd|sd|xvd)[a-z]+$`)

// blockDisk is one whole disk as sysfs shows it.
type blockDisk struct {
	Name   string
	Serial string
	// Seq is the kernel's diskseq, new for every disk it sets up: a disk
	// unplugged and plugged again between two polls keeps its name but not
	// its Seq (a virtio-scsi detach and attach can take under a second).
	Seq        string
	Partitions map[int]string // partition number -> device name
}

// byIDLinks are udev's by-id links for the disk: link name -> device name.
func (d blockDisk) byIDLinks() map[string]string {
	numbers := slices.Sorted(maps.Keys(d.Partitions))
	links := map[string]string{}
	names := guestcheck.VirtioByIDNames(d.Serial, numbers)
	if !strings.HasPrefix(d.Name, "vd") || len(names) == 0 {
		return links
	}
	links[names[0]] = d.Name
	for i, n := range numbers {
		links[names[i+1]] = d.Partitions[n]
	}
	return links
}

// scanDisks reads every whole disk from /sys/block.
func scanDisks() map[string]blockDisk {
	disks := map[string]blockDisk{}
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		name := e.Name()
		if !diskNamePattern.MatchString(name) {
			continue
		}
		d := blockDisk{Name: name, Partitions: map[int]string{}}
		if raw, err := os.ReadFile(filepath.Join("/sys/block", name, "serial")); err == nil {
			d.Serial = string(raw)
		}
		if raw, err := os.ReadFile(filepath.Join("/sys/block", name, "diskseq")); err == nil {
			d.Seq = strings.TrimSpace(string(raw))
		}
		parts, _ := filepath.Glob(filepath.Join("/sys/block", name, name+"*", "partition"))
		for _, p := range parts {
			raw, err := os.ReadFile(p)
			if n, convErr := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil && convErr == nil {
				d.Partitions[n] = filepath.Base(filepath.Dir(p))
			}
		}
		disks[name] = d
	}
	return disks
}

// diskWatcher keeps /dev/disk/by-id in step with the disks, the way udev
// would, and reports each data disk once per appearance.
type diskWatcher struct {
	rep      *reporter
	agentID  string
	excluded map[string]bool // root disk and config drive

	mu    sync.Mutex
	disks map[string]blockDisk
	links map[string]string // by-id name -> device name
	known map[string]string // data disks reported as present -> their Seq
}

func newDiskWatcher(rep *reporter, agentID string, excluded ...string) *diskWatcher {
	w := &diskWatcher{rep: rep, agentID: agentID, excluded: map[string]bool{},
		disks: map[string]blockDisk{}, links: map[string]string{}, known: map[string]string{}}
	for _, name := range excluded {
		w.excluded[name] = true
	}
	return w
}

// refresh rescans the disks and rewrites the by-id links. It returns the
// data disks that appeared and disappeared since the last call.
func (w *diskWatcher) refresh() (appeared, gone []string) {
	disks := w.rescan()
	w.mu.Lock()
	defer w.mu.Unlock()
	return diffDisks(w.known, disks, w.excluded)
}

// rescan reads the disks and rewrites the by-id links, leaving what was
// reported alone: only poll reports appearances and removals.
func (w *diskWatcher) rescan() map[string]blockDisk {
	disks := scanDisks()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.disks = disks
	want := map[string]string{}
	for _, d := range disks {
		for link, dev := range d.byIDLinks() {
			want[link] = dev
		}
	}
	syncLinks(w.links, want)
	w.links = want
	return disks
}

// diffDisks updates known (data disk name -> Seq) to disks and returns the
// names that appeared and those gone. A name whose Seq changed is both:
// another disk now has it.
func diffDisks(known map[string]string, disks map[string]blockDisk, excluded map[string]bool) (appeared, gone []string) {
	for name, seq := range known {
		if d, ok := disks[name]; !ok || d.Seq != seq {
			delete(known, name)
			gone = append(gone, name)
		}
	}
	for name, d := range disks {
		if _, ok := known[name]; !ok && !excluded[name] {
			known[name] = d.Seq
			appeared = append(appeared, name)
		}
	}
	sort.Strings(appeared)
	sort.Strings(gone)
	return appeared, gone
}

// syncLinks makes /dev/disk/by-id hold exactly want, with relative links
// as udev makes them.
func syncLinks(have, want map[string]string) {
	os.MkdirAll(byIDDir, 0o755)
	for link, dev := range have {
		if want[link] != dev {
			os.Remove(filepath.Join(byIDDir, link))
		}
	}
	for link, dev := range want {
		if have[link] == dev {
			continue
		}
		path := filepath.Join(byIDDir, link)
		os.Remove(path)
		os.Symlink("../../"+dev, path)
	}
}

// namesOf are the by-id paths of a disk and its partitions, sorted.
func (w *diskWatcher) namesOf(disk string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	devices := map[string]bool{disk: true}
	for _, part := range w.disks[disk].Partitions {
		devices[part] = true
	}
	var names []string
	for link, dev := range w.links {
		if devices[dev] {
			names = append(names, filepath.Join(byIDDir, link))
		}
	}
	sort.Strings(names)
	return names
}

// allNames are every by-id path, for the agent's resolver.
func (w *diskWatcher) allNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var names []string
	for link := range w.links {
		names = append(names, filepath.Join(byIDDir, link))
	}
	sort.Strings(names)
	return names
}

// run polls for hot-plugged and unplugged disks for ever.
func (w *diskWatcher) run() {
	for {
		w.poll()
		time.Sleep(pollInterval)
	}
}

func (w *diskWatcher) poll() {
	appeared, gone := w.refresh()
	for _, name := range gone {
		w.rep.report(guestcheck.Report{Event: guestcheck.EventDiskGone, Device: "/dev/" + name})
	}
	for _, name := range appeared {
		go w.handleNewDisk(name)
	}
}

// handleNewDisk reports a disk that appeared: what it already holds, or,
// when it is new and empty, after giving it a partition, a filesystem and
// a marker holding its by-id names.
func (w *diskWatcher) handleNewDisk(name string) {
	dev := "/dev/" + name
	r := guestcheck.Report{Event: guestcheck.EventDisk, Device: dev}
	empty, err := isEmpty(dev)
	switch {
	case err != nil:
		r.Message = err.Error()
	case empty:
		// A new disk held nothing: its report carries no marker.
		if err := w.initialise(name); err != nil {
			r.Message = "preparing the new disk: " + err.Error()
		} else {
			r.Created = true
		}
	default:
		marker, err := w.readMarker(name)
		if err != nil {
			r.Message = err.Error()
		}
		r.Marker = marker
	}
	r.ByID = w.namesOf(name)
	r.SCSIVolumeID = guestcheck.SCSIVolumeIDRule{SysRoot: "/sys"}.VolumeIDOf(name)
	w.rep.report(r)
}

// isEmpty tells whether the disk's first MiB reads as zeros: only such a
// disk is partitioned, so no data is ever overwritten.
func isEmpty(dev string) (bool, error) {
	f, err := os.Open(dev)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, emptyProbeBytes)
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return false, fmt.Errorf("reading %s: %w", dev, err)
	}
	return bytes.Count(buf[:n], []byte{0}) == n, nil
}

// initialise partitions, formats and marks a new disk.
func (w *diskWatcher) initialise(name string) error {
	dev := "/dev/" + name
	part, err := partition(name)
	if err != nil {
		return err
	}
	if err := run("/sbin/mke2fs", "-t", "ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", "/dev/"+part); err != nil {
		return err
	}
	w.rescan() // the partition's by-id link belongs in the marker
	marker, err := json.Marshal(map[string]any{"by_id": w.namesOf(name), "written_by": w.agentID, "device": dev})
	if err != nil {
		return err
	}
	return withMounted("/dev/"+part, func(dir string) error {
		return writeFileSynced(filepath.Join(dir, markerName), marker)
	})
}

// partition writes a one-partition table and has the kernel read it; the
// partition's node then appears in devtmpfs.
func partition(name string) (string, error) {
	dev := "/dev/" + name
	raw, err := os.ReadFile(filepath.Join("/sys/block", name, "size"))
	if err != nil {
		return "", err
	}
	sectors, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return "", fmt.Errorf("size of %s: %w", dev, err)
	}
	mbr, err := singlePartitionMBR(sectors, crc32.ChecksumIEEE([]byte(dev+time.Now().String())))
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.WriteAt(mbr[:], 0); err != nil {
		return "", fmt.Errorf("writing the partition table of %s: %w", dev, err)
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), ioctlBLKRRPART, 0); errno != 0 {
		return "", fmt.Errorf("re-reading the partition table of %s: %w", dev, errno)
	}
	part := partitionDevice(name, 1)
	for i := 0; i < 50; i++ {
		if _, err := os.Stat("/dev/" + part); err == nil {
			return part, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no /dev/%s after re-reading the partition table", part)
}

// partitionDevice names a partition as the kernel does for the disks
// diskNamePattern admits (none ends in a digit): "vdc1".
func partitionDevice(disk string, n int) string {
	return fmt.Sprintf("%s%d", disk, n)
}

// readMarker returns the marker a disk holds, from its first partition or,
// without partitions, the whole disk.
func (w *diskWatcher) readMarker(name string) (json.RawMessage, error) {
	w.mu.Lock()
	fsDev := "/dev/" + name
	if part, ok := w.disks[name].Partitions[1]; ok {
		fsDev = "/dev/" + part
	}
	w.mu.Unlock()
	var marker json.RawMessage
	err := withMounted(fsDev, func(dir string) error {
		raw, err := os.ReadFile(filepath.Join(dir, markerName))
		if os.IsNotExist(err) {
			return fmt.Errorf("%s has a filesystem but no marker", fsDev)
		}
		if err != nil {
			return err
		}
		marker = markerJSON(raw)
		return nil
	})
	return marker, err
}

// markerJSON is the marker as it goes into a report: itself when it is
// JSON, else a JSON string of it.
func markerJSON(raw []byte) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if json.Valid(raw) {
		return raw
	}
	quoted, _ := json.Marshal(string(raw))
	return quoted
}

// withMounted mounts an ext4 (or vfat) filesystem for the length of fn and
// unmounts it again, so a hot-unplug never finds it mounted.
func withMounted(dev string, fn func(dir string) error) error {
	dir := filepath.Join(dataMount, filepath.Base(dev))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var mountErr error
	for _, fstype := range []string{"ext4", "vfat"} {
		if mountErr = syscall.Mount(dev, dir, fstype, 0, ""); mountErr == nil {
			break
		}
	}
	if mountErr != nil {
		return fmt.Errorf("%s holds no filesystem this agent mounts: %w", dev, mountErr)
	}
	fnErr := fn(dir)
	if err := syscall.Unmount(dir, 0); err != nil && fnErr == nil {
		fnErr = fmt.Errorf("unmounting %s: %w", dev, err)
	}
	return fnErr
}

func writeFileSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// resolveSettingsDisk resolves a disk from the settings the way the agent
// of today's OpenStack stemcells does: its disk CID ("" for the ephemeral
// disk, which has none) by the by-id rule, waiting while no link matches
// yet; then the hint's path. It reports the device found, or an error.
func (w *diskWatcher) resolveSettingsDisk(event, diskCID string, h guestcheck.Hint, wait time.Duration) {
	if h.VolumeID != "" {
		w.resolveSCSIDisk(event, diskCID, h, wait)
		return
	}
	r := guestcheck.Report{Event: event, DiskCID: diskCID, Hint: &h}
	deadline := time.Now().Add(wait)
	for {
		match, err := guestcheck.OpenStackRule.Match(diskCID, w.allNames())
		if err == nil {
			r.Via = "id"
			r.Device, _ = filepath.EvalSymlinks(match)
			w.rep.report(r)
			return
		}
		if !errors.Is(err, guestcheck.ErrNoIDMatch) || time.Now().After(deadline) {
			r.Message = "by id: " + err.Error()
			break
		}
		time.Sleep(pollInterval)
	}
	for {
		dev, err := guestcheck.MapPath(h.Path, fileExists)
		if err == nil {
			r.Via = "path"
			r.Device = dev
			w.rep.report(r)
			return
		}
		if time.Now().After(deadline) {
			w.rep.report(guestcheck.Report{Event: guestcheck.EventError, DiskCID: diskCID, Hint: &h,
				Message: fmt.Sprintf("%s disk not found: %s; by path: %v", event, r.Message, err)})
			return
		}
		time.Sleep(pollInterval)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// resolveSCSIDisk resolves a disk whose hint names a SCSI target the way
// the vSphere stemcell's agent does ("scsi" resolution, volume-id
// resolver): rescan the SCSI hosts and take the block device at
// *:0:<volume_id>:0, with no fallback to the CID or the path, as that
// agent has none. Only a disk on a SCSI bus carries a volume_id.
func (w *diskWatcher) resolveSCSIDisk(event, diskCID string, h guestcheck.Hint, wait time.Duration) {
	rule := guestcheck.SCSIVolumeIDRule{SysRoot: "/sys"}
	deadline := time.Now().Add(wait)
	for {
		dev, err := rule.Resolve(h.VolumeID)
		if err == nil {
			w.rep.report(guestcheck.Report{Event: event, DiskCID: diskCID, Hint: &h, Via: "scsi", Device: dev})
			return
		}
		if !errors.Is(err, guestcheck.ErrNoSCSIDevice) || time.Now().After(deadline) {
			w.rep.report(guestcheck.Report{Event: guestcheck.EventError, DiskCID: diskCID, Hint: &h,
				Message: fmt.Sprintf("%s disk not found by its SCSI target: %v", event, err)})
			return
		}
		time.Sleep(pollInterval)
	}
}
