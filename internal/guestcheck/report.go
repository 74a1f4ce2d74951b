package guestcheck

import (
	"encoding/json"
	"strings"
)

// ReportPrefix starts every line the test stemcell's agent writes to the
// serial console (in a container: its stdout, the container's log); the
// JSON report follows it on the same line.
const ReportPrefix = "TEST-AGENT "

// Events of the reports.
const (
	EventSettings   = "settings"   // settings read (config drive, or the warden settings file)
	EventNIC        = "nic"        // a settings network configured on the NIC with its MAC
	EventDisk       = "disk"       // a data disk appeared (once per appearance)
	EventDiskGone   = "disk_gone"  // a data disk disappeared (hot-unplug)
	EventEphemeral  = "ephemeral"  // the ephemeral disk hint resolved
	EventPersistent = "persistent" // a persistent disk hint of the settings resolved
	EventShutdown   = "shutdown"   // the power button was pressed
	EventError      = "error"      // something the agent needs failed
)

// Report is one line of the agent's output.
type Report struct {
	Event   string   `json:"event"`
	AgentID string   `json:"agent_id,omitempty"`
	VMName  string   `json:"vm_name,omitempty"`
	Network string   `json:"network,omitempty"`
	Type    string   `json:"type,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	NIC     string   `json:"nic,omitempty"`
	IP      string   `json:"ip,omitempty"`
	DiskCID string   `json:"disk_cid,omitempty"`
	Hint    *Hint    `json:"hint,omitempty"`
	Via     string   `json:"via,omitempty"`
	ByID    []string `json:"by_id,omitempty"`
	Device  string   `json:"device,omitempty"`
	// SCSIVolumeID, on a disk report, is the volume_id by which the
	// vSphere agent's rule (SCSIVolumeIDRule) finds the disk, run in the
	// guest; empty when that rule cannot find it.
	SCSIVolumeID string          `json:"scsi_volume_id,omitempty"`
	Marker       json.RawMessage `json:"marker,omitempty"`
	Created      bool            `json:"created,omitempty"`
	Disks        []string        `json:"persistent_disks,omitempty"`
	Networks     []string        `json:"networks,omitempty"`
	// Mbus is the settings' mbus URL with its password masked, so the
	// report says which mbus the agent would use without leaking it.
	Mbus string `json:"mbus,omitempty"`
	// SettingsSHA256 is the hex SHA-256 of the settings document as read,
	// so a test can compare the whole document with what the CPI wrote.
	SettingsSHA256 string `json:"settings_sha256,omitempty"`
	Message        string `json:"message,omitempty"`
	// Seconds since the kernel started, from /proc/uptime.
	Uptime float64 `json:"uptime,omitempty"`
}

// ParseReports returns the reports found in console output, in order;
// lines without the prefix or with a broken report are skipped.
func ParseReports(console string) []Report {
	var out []Report
	for _, line := range strings.Split(console, "\n") {
		i := strings.Index(line, ReportPrefix)
		if i < 0 {
			continue
		}
		var r Report
		if json.Unmarshal([]byte(strings.TrimSpace(line[i+len(ReportPrefix):])), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}
