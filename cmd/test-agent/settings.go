package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// settingsDoc is the part of the bosh-agent settings document this agent
// acts on; the rest (mbus, blobstore, env...) is read past.
type settingsDoc struct {
	AgentID  string                `json:"agent_id"`
	Mbus     string                `json:"mbus"`
	VM       struct{ Name string } `json:"vm"`
	Networks map[string]network    `json:"networks"`
	Disks    struct {
		System     json.RawMessage            `json:"system"`
		Ephemeral  json.RawMessage            `json:"ephemeral"`
		Persistent map[string]json.RawMessage `json:"persistent"`
	} `json:"disks"`
}

type network struct {
	Type    string   `json:"type"`
	IP      string   `json:"ip"`
	Netmask string   `json:"netmask"`
	Gateway string   `json:"gateway"`
	DNS     []string `json:"dns"`
	Default []string `json:"default"`
	MAC     string   `json:"mac"`
	UseDHCP bool     `json:"use_dhcp"`
}

// settings is what the agent needs, with every disk hint parsed.
type settings struct {
	AgentID    string
	VMName     string
	Mbus       string // password masked
	SHA256     string // of the document as read
	Networks   map[string]network
	SystemDisk string // device name, e.g. "vda"
	Ephemeral  *guestcheck.Hint
	Persistent map[string]guestcheck.Hint
}

// parseSettings decodes ec2/latest/user-data.
func parseSettings(data []byte) (settings, error) {
	var doc settingsDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return settings{}, fmt.Errorf("decoding agent settings: %w", err)
	}
	if doc.AgentID == "" {
		return settings{}, fmt.Errorf("agent settings have no agent_id")
	}
	s := settings{
		AgentID:    doc.AgentID,
		VMName:     doc.VM.Name,
		Mbus:       maskMbus(doc.Mbus),
		SHA256:     fmt.Sprintf("%x", sha256.Sum256(data)),
		Networks:   doc.Networks,
		SystemDisk: "vda",
		Persistent: map[string]guestcheck.Hint{},
	}
	if len(doc.Disks.System) > 0 && string(doc.Disks.System) != "null" {
		h, err := guestcheck.ParseHint(doc.Disks.System)
		if err != nil {
			return settings{}, fmt.Errorf("system disk: %w", err)
		}
		if h.Path != "" {
			s.SystemDisk = path.Base(h.Path)
		}
	}
	if len(doc.Disks.Ephemeral) > 0 && string(doc.Disks.Ephemeral) != "null" {
		h, err := guestcheck.ParseHint(doc.Disks.Ephemeral)
		if err != nil {
			return settings{}, fmt.Errorf("ephemeral disk: %w", err)
		}
		s.Ephemeral = &h
	}
	for cid, raw := range doc.Disks.Persistent {
		h, err := guestcheck.ParseHint(raw)
		if err != nil {
			return settings{}, fmt.Errorf("persistent disk %s: %w", cid, err)
		}
		s.Persistent[cid] = h
	}
	return s, nil
}

// maskMbus is the mbus URL with its password replaced: the report goes to
// a console or a container log, which must not carry credentials.
func maskMbus(mbus string) string {
	u, err := url.Parse(mbus)
	if err != nil {
		return "(unparsable mbus URL)"
	}
	return u.Redacted()
}

// persistentCIDs are the persistent disk CIDs, sorted.
func (s settings) persistentCIDs() []string {
	return slices.Sorted(maps.Keys(s.Persistent))
}

// networkNames are the settings network names, sorted.
func (s settings) networkNames() []string {
	return slices.Sorted(maps.Keys(s.Networks))
}

// usesDHCP follows the agent: dynamic networks, and manual ones that carry
// no address, get their address by DHCP; vip networks are not on a NIC.
func (n network) usesDHCP() bool {
	return n.Type == "dynamic" || n.UseDHCP || (n.Type != "vip" && n.IP == "" && n.Netmask == "")
}

// prefixLength turns a dotted netmask into a prefix length.
func prefixLength(netmask string) (int, error) {
	ip := net.ParseIP(netmask).To4()
	if ip == nil {
		return 0, fmt.Errorf("netmask %q is not an IPv4 mask", netmask)
	}
	ones, bits := net.IPMask(ip).Size()
	if bits == 0 {
		return 0, fmt.Errorf("netmask %q is not contiguous", netmask)
	}
	return ones, nil
}

// isDefaultGateway tells whether the network carries the default route.
func (n network) isDefaultGateway() bool {
	return slices.Contains(n.Default, "gateway")
}

// nicPlan is one settings network bound to the NIC that has its MAC.
type nicPlan struct {
	Network string
	NIC     string
	MAC     string
	Net     network
}

// matchNICs binds each network (but vip ones) to the interface with its
// MAC, compared case-insensitively as the agent does. macs maps a
// lower-case MAC to an interface name. Networks that find no NIC come back
// as errors; the plans are sorted by network name.
func matchNICs(networks map[string]network, macs map[string]string) ([]nicPlan, []error) {
	var plans []nicPlan
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(networks)) {
		n := networks[name]
		if n.Type == "vip" {
			continue
		}
		mac := strings.ToLower(n.MAC)
		if mac == "" {
			errs = append(errs, fmt.Errorf("network %s has no mac in the settings", name))
			continue
		}
		nic, ok := macs[mac]
		if !ok {
			errs = append(errs, fmt.Errorf("network %s: no NIC has MAC %s", name, mac))
			continue
		}
		plans = append(plans, nicPlan{Network: name, NIC: nic, MAC: mac, Net: n})
	}
	return plans, errs
}

// report is the settings report; source is where they were read from.
func (s settings) report(source settingsSource) guestcheck.Report {
	return guestcheck.Report{Event: guestcheck.EventSettings, AgentID: s.AgentID, VMName: s.VMName,
		Networks: s.networkNames(), Disks: s.persistentCIDs(), Device: source.device, Via: source.kind,
		Mbus: s.Mbus, SettingsSHA256: s.SHA256}
}
