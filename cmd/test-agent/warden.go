package main

// The warden form: the test agent as PID 1 of a container made by the
// Docker runtime (internal/docker), doing what bosh-agent does on a warden
// stemcell with what the CPI gives a container:
//   - settings from /var/vcap/bosh/warden-cpi-agent-env.json, which the
//     CPI copies in before the container starts (no config drive: the file
//     must be there at start, so it is not waited for);
//   - networks: verified, not configured (see reportWardenNICs);
//   - persistent disks: the hint's path /warden-cpi-dev/<disk-cid>, a
//     mount the CPI makes there (the real warden agent bind-mounts it to
//     /var/vcap/store; see wardenDisks for why this one does not).
// Reports go to stdout, which Docker keeps as the container's log: the
// docker equivalent of the serial console, read by tests through the
// ContainerLogs API.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

const (
	// wardenSettingsPath is where warden stemcells' agent reads its settings.
	wardenSettingsPath = "/var/vcap/bosh/warden-cpi-agent-env.json"
	// wardenDiskDir holds one mount per attached persistent disk.
	wardenDiskDir = "/warden-cpi-dev"
)

// inContainer tells whether the agent runs as a container's init: the
// warden settings file is there, or what Docker and the Docker runtime
// give every container (/.dockerenv, the disk hint directory) is. Without
// the settings file the agent must still take the warden path, so that it
// reports the missing file instead of waiting for a config drive.
func inContainer(exists func(string) bool) bool {
	return exists(wardenSettingsPath) || exists("/.dockerenv") || exists(wardenDiskDir)
}

func runWarden() {
	rep := &reporter{out: os.Stdout}
	watchStop(rep)
	s, err := readWardenSettings(wardenSettingsPath)
	if err != nil {
		rep.report(guestcheck.Report{Event: guestcheck.EventError, Device: wardenSettingsPath,
			Message: "reading settings from the warden settings file: " + err.Error()})
	} else {
		rep.report(s.report(settingsSource{device: wardenSettingsPath, kind: sourceWardenFile}))
		reportWardenNICs(rep, s)
		if s.Ephemeral != nil {
			reportWardenEphemeral(rep, *s.Ephemeral)
		}
	}
	w := &wardenDisks{rep: rep, agentID: s.AgentID, dir: wardenDiskDir, known: map[string]bool{}}
	for _, cid := range s.persistentCIDs() {
		go w.resolveSettingsDisk(cid, s.Persistent[cid], diskWait)
	}
	w.run()
}

func readWardenSettings(path string) (settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return settings{}, err
	}
	return parseSettings(data)
}

// watchStop ends the agent on SIGTERM (docker stop, reboot_vm): PID 1 of a
// container gets no default action for it, so without a handler every stop
// would wait out the runtime's stop timeout and end in SIGKILL.
func watchStop(rep *reporter) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-ch
		rep.report(guestcheck.Report{Event: guestcheck.EventShutdown, Message: "signal " + sig.String() + ": stopping"})
		syscall.Sync()
		os.Exit(0)
	}()
}

// reportWardenNICs verifies each settings network against the container's
// NICs and reports them. Nothing is configured, and what cannot be done
// in a container is not treated as a failure:
//   - Docker made the NICs (veth pairs moved into the container's network
//     namespace) and gave them their MACs, addresses and routes from its
//     IPAM before PID 1 started; there is no DHCP server on a Docker
//     network, so a dynamic network's address is the one the NIC already
//     has, and no lease is asked for;
//   - the container has no CAP_NET_ADMIN (Docker's default capability
//     set), so the agent could not add or move an address or a route
//     anyway: a manual network's static IP must already be on the NIC with
//     its MAC, which is what the CPI is answerable for, and is checked.
//
// A network without its NIC, or a manual one whose IP is not on it, is an
// error report naming the network.
func reportWardenNICs(rep *reporter, s settings) {
	macs, err := interfaceMACs()
	if err != nil {
		rep.fail("listing NICs", err)
	}
	for _, name := range s.networkNames() {
		n := s.Networks[name]
		if n.Type == "vip" {
			continue
		}
		plans, errs := matchNICs(map[string]network{name: n}, macs)
		for _, err := range errs {
			rep.report(guestcheck.Report{Event: guestcheck.EventError, Network: name, MAC: strings.ToLower(n.MAC),
				Message: "matching networks to NICs by MAC: " + err.Error()})
		}
		for _, p := range plans {
			rep.report(wardenNICReport(p, addressesOf(p.NIC)))
		}
	}
}

// wardenNICReport judges one matched NIC by its IPv4 addresses (CIDR form).
func wardenNICReport(p nicPlan, addrs []string) guestcheck.Report {
	kind := "manual"
	if p.Net.usesDHCP() {
		kind = "dynamic"
	}
	r := nicReport(p, kind, "")
	if len(addrs) > 0 {
		r.IP, _, _ = strings.Cut(addrs[0], "/")
	}
	if kind == "dynamic" {
		if len(addrs) == 0 {
			r.Message = "the NIC has no IPv4 address from Docker"
		}
		return r
	}
	want := p.Net.IP
	for _, a := range addrs {
		ip, prefix, _ := strings.Cut(a, "/")
		if ip != want {
			continue
		}
		r.IP = ip
		if p.Net.Netmask != "" {
			if n, err := prefixLength(p.Net.Netmask); err == nil && fmt.Sprint(n) != prefix {
				r.Message = fmt.Sprintf("static IP %s is on the NIC as /%s; the settings' netmask %s is /%d", ip, prefix, p.Net.Netmask, n)
			}
		}
		return r
	}
	return guestcheck.Report{Event: guestcheck.EventError, Network: p.Network, MAC: p.MAC, NIC: p.NIC, IP: r.IP,
		Message: fmt.Sprintf("static IP %s of network %s is not on NIC %s (it has %v); a container cannot set it, Docker must have assigned it",
			want, p.Network, p.NIC, addrs)}
}

// addressesOf are the NIC's IPv4 addresses as "ip/prefix".
func addressesOf(nic string) []string {
	iface, err := net.InterfaceByName(nic)
	if err != nil {
		return nil
	}
	addrs, _ := iface.Addrs()
	var out []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			ones, _ := ipn.Mask.Size()
			out = append(out, fmt.Sprintf("%s/%d", ipn.IP, ones))
		}
	}
	return out
}

// reportWardenEphemeral reports the ephemeral disk found at its hint's
// path (a directory: the runtime's volume), or an error.
func reportWardenEphemeral(rep *reporter, h guestcheck.Hint) {
	r := guestcheck.Report{Event: guestcheck.EventEphemeral, Hint: &h, Via: "path", Device: h.Path}
	if st, err := os.Stat(h.Path); err != nil || !st.IsDir() {
		r = guestcheck.Report{Event: guestcheck.EventError, Hint: &h, Message: fmt.Sprintf("ephemeral disk: no directory at hint path %q", h.Path)}
	}
	rep.report(r)
}

// wardenDisks watches wardenDiskDir for persistent disks coming and going.
// A disk is a mount point there: a directory on another filesystem than
// wardenDiskDir itself (the CPI mounts the disk's image into the shared
// directory; a directory left after its unmount is not a disk).
//
// Unlike the real warden agent, this one does not bind-mount the disk to
// /var/vcap/store: it has no mbus, so no unmount_disk would ever make it
// let go, and detach_disk rightly refuses while the guest holds a mount of
// the disk. It only opens the disk's directory long enough to read or
// write its marker.
type wardenDisks struct {
	rep     *reporter
	agentID string
	dir     string

	mu    sync.Mutex
	known map[string]bool // disk CIDs reported as present
}

// mountedEntries are the names under dir that are mount points, sorted.
func mountedEntries(dir string) []string {
	parent, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() && isMountBelow(filepath.Join(dir, e.Name()), parent) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// isMountBelow tells whether p is on another device than its parent.
func isMountBelow(p string, parent os.FileInfo) bool {
	st, err := os.Stat(p)
	if err != nil {
		return false
	}
	a, ok1 := st.Sys().(*syscall.Stat_t)
	b, ok2 := parent.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && a.Dev != b.Dev
}

// diff records the present disks and returns those that appeared and
// those that went since the last call.
func (w *wardenDisks) diff(present []string) (appeared, gone []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, cid := range present {
		if !w.known[cid] {
			w.known[cid] = true
			appeared = append(appeared, cid)
		}
	}
	for cid := range w.known {
		if !slices.Contains(present, cid) {
			delete(w.known, cid)
			gone = append(gone, cid)
		}
	}
	sort.Strings(gone)
	return appeared, gone
}

func (w *wardenDisks) run() {
	for {
		appeared, gone := w.diff(mountedEntries(w.dir))
		for _, cid := range gone {
			w.rep.report(guestcheck.Report{Event: guestcheck.EventDiskGone, DiskCID: cid, Device: filepath.Join(w.dir, cid)})
		}
		for _, cid := range appeared {
			w.rep.report(w.diskReport(cid))
		}
		time.Sleep(pollInterval)
	}
}

// diskReport is the report of a disk that appeared: the marker it holds,
// or, when it holds nothing yet, after writing one naming this agent.
func (w *wardenDisks) diskReport(cid string) guestcheck.Report {
	dir := filepath.Join(w.dir, cid)
	r := guestcheck.Report{Event: guestcheck.EventDisk, DiskCID: cid, Device: dir, Via: "path",
		Hint: &guestcheck.Hint{ID: cid, Path: dir}}
	raw, err := os.ReadFile(filepath.Join(dir, markerName))
	switch {
	case err == nil:
		r.Marker = markerJSON(raw)
	case !os.IsNotExist(err):
		r.Message = err.Error()
	default:
		entries, err := os.ReadDir(dir)
		if err != nil {
			r.Message = err.Error()
			break
		}
		for _, e := range entries {
			if e.Name() != "lost+found" {
				r.Message = fmt.Sprintf("%s holds data (%s) but no marker", dir, e.Name())
				return r
			}
		}
		marker, _ := json.Marshal(map[string]any{"disk_cid": cid, "written_by": w.agentID, "device": dir})
		if err := writeFileSynced(filepath.Join(dir, markerName), marker); err != nil {
			r.Message = "writing the marker: " + err.Error()
		} else {
			r.Created = true
		}
	}
	return r
}

// resolveSettingsDisk resolves a persistent disk of the settings by the
// agent's path rule on its hint (warden hints are paths; there is no
// /dev/disk/by-id in a container), waiting for the mount to appear.
func (w *wardenDisks) resolveSettingsDisk(cid string, h guestcheck.Hint, wait time.Duration) {
	parent, _ := os.Stat(w.dir)
	mounted := func(p string) bool { return parent != nil && isMountBelow(p, parent) }
	deadline := time.Now().Add(wait)
	for {
		dev, err := guestcheck.MapPath(h.Path, mounted)
		if err == nil {
			w.rep.report(guestcheck.Report{Event: guestcheck.EventPersistent, DiskCID: cid, Hint: &h, Via: "path", Device: dev})
			return
		}
		if time.Now().After(deadline) {
			w.rep.report(guestcheck.Report{Event: guestcheck.EventError, DiskCID: cid, Hint: &h,
				Message: fmt.Sprintf("persistent disk not found by its warden hint: %v", err)})
			return
		}
		time.Sleep(pollInterval)
	}
}
