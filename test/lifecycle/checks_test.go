package lifecycle

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// domainMACs are the MACs of the domain's NICs, read through virsh.
func domainMACs(env *devenv.Env, vmCID string) ([]string, error) {
	out, err := env.Virsh("domiflist", vmCID)
	if err != nil {
		return nil, fmt.Errorf("virsh domiflist %s: %s", vmCID, out)
	}
	var macs []string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 5 && strings.Count(fields[4], ":") == 5 {
			macs = append(macs, fields[4])
		}
	}
	return macs, nil
}

// checkBoot waits for the guest to read its settings and to configure a NIC
// for every MAC of the domain, with the manual network's static IP. It
// returns the index of the first report after them.
func checkBoot(env *devenv.Env, vmCID, agentID, manualIP string, from int, timeout time.Duration) (int, error) {
	settings, at, err := env.WaitForReport(vmCID, from, timeout, "settings report", func(r report) bool {
		return r.Event == guestcheck.EventSettings || r.Event == guestcheck.EventError
	})
	if err != nil {
		return at, err
	}
	if settings.Event == guestcheck.EventError {
		return at, fmt.Errorf("VM %s: the guest could not read its settings: %s", vmCID, raw(settings))
	}
	if settings.AgentID != agentID {
		return at, fmt.Errorf("VM %s: the guest read agent_id %q; want %q", vmCID, settings.AgentID, agentID)
	}
	macs, err := domainMACs(env, vmCID)
	if err != nil {
		return at, err
	}
	if len(macs) == 0 {
		return at, fmt.Errorf("VM %s has no NIC in its definition", vmCID)
	}
	last := at
	staticSeen := false
	for _, mac := range macs {
		nic, i, err := env.WaitForReport(vmCID, at, 30*time.Second, "NIC report for domain MAC "+mac, func(r report) bool {
			return r.Event == guestcheck.EventNIC && strings.EqualFold(r.MAC, mac)
		})
		if err != nil {
			return at, fmt.Errorf("%w(the agent matches NICs by the MAC in its settings: settings and domain must agree)", err)
		}
		staticSeen = staticSeen || nic.IP == manualIP
		if i > last {
			last = i
		}
	}
	if !staticSeen {
		return at, fmt.Errorf("VM %s: no NIC configured with the manual network's IP %s:\n%s", vmCID, manualIP, devenv.DescribeReports(env.GuestReports(vmCID)))
	}
	return last + 1, nil
}

// checkDiskResolves waits for the guest to see the attached disk, then
// applies the agent's by-id rule to the disk CID, as bosh-agent does, over
// every by-id name the guest reported: under each of the three agent
// variants exactly one name must match (the same one, so the disk's own,
// which the report waited for carries). The hint's id plays no part: the
// agent never reads it.
func checkDiskResolves(env *devenv.Env, vmCID, diskCID string, from int, timeout time.Duration) (report, error) {
	seen, _, err := env.WaitForReport(vmCID, from, timeout, fmt.Sprintf("disk report whose by-id names hold disk CID %s", diskCID), func(r report) bool {
		_, err := guestcheck.OpenStackRule.Match(diskCID, r.ByID)
		return r.Event == guestcheck.EventDisk && err == nil
	})
	if err != nil {
		return report{}, fmt.Errorf("%w(the agent looks a persistent disk up by its CID in /dev/disk/by-id)", err)
	}
	var names []string
	for _, r := range env.GuestReports(vmCID) {
		if r.Event == guestcheck.EventDisk {
			names = append(names, r.ByID...)
		}
	}
	if _, err := guestcheck.MatchAll(diskCID, uniq(names)); err != nil {
		return seen, fmt.Errorf("VM %s: the agent would not find disk %s by id: %w", vmCID, diskCID, err)
	}
	return seen, nil
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// markerOf renders a disk report's marker for comparisons.
func markerOf(r report) string {
	if len(r.Marker) == 0 || string(r.Marker) == "null" || string(r.Marker) == `""` {
		return ""
	}
	var s string
	if json.Unmarshal(r.Marker, &s) == nil {
		return s
	}
	return string(r.Marker)
}
