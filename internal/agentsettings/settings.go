// Package agentsettings builds the settings a bosh-agent reads at boot: the
// full document (stemcell API v2 and later have no registry), as bosh-agent's
// settings.Settings decodes it.
package agentsettings

import (
	"encoding/json"
	"fmt"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// Settings is the agent's settings document.
type Settings struct {
	AgentID   string             `json:"agent_id"`
	VM        VM                 `json:"vm"`
	Mbus      string             `json:"mbus"`
	NTP       []string           `json:"ntp"`
	Blobstore *config.Blobstore  `json:"blobstore,omitempty"`
	Networks  map[string]Network `json:"networks"`
	Disks     Disks              `json:"disks"`
	Env       map[string]any     `json:"env"`
}

// VM names the VM; the agent reports it as its CID.
type VM struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// Network is one BOSH network as the agent configures it.
type Network struct {
	Type            string          `json:"type"`
	IP              string          `json:"ip,omitempty"`
	Netmask         string          `json:"netmask,omitempty"`
	Gateway         string          `json:"gateway,omitempty"`
	DNS             []string        `json:"dns"`
	Default         []string        `json:"default"`
	Routes          json.RawMessage `json:"routes,omitempty"`
	Alias           string          `json:"alias,omitempty"`
	CloudProperties json.RawMessage `json:"cloud_properties,omitempty"`
	// MAC is how the agent finds the NIC for this network: it must equal
	// the MAC in the domain definition. vip networks have no NIC and none.
	MAC           string `json:"mac,omitempty"`
	Preconfigured bool   `json:"preconfigured"`
	UseDHCP       bool   `json:"use_dhcp"`
}

// Disks are the agent's disk hints.
type Disks struct {
	System     string               `json:"system"`
	Ephemeral  *disk.Hint           `json:"ephemeral,omitempty"`
	Persistent map[string]disk.Hint `json:"persistent"`
}

// NetworkFrom turns one director network into the agent's form; the
// runtime writes the MAC of its NIC in later. src is bosh-cpi-go's apiv1.Network, whose JSON
// form carries every field the director sent (routes, alias,
// cloud_properties).
func NetworkFrom(src json.Marshaler, dynamic bool) (Network, error) {
	raw, err := src.MarshalJSON()
	if err != nil {
		return Network{}, fmt.Errorf("encoding network: %w", err)
	}
	var n Network
	if err := json.Unmarshal(raw, &n); err != nil {
		return Network{}, fmt.Errorf("decoding network: %w", err)
	}
	n.UseDHCP = dynamic
	if n.DNS == nil {
		n.DNS = []string{}
	}
	if n.Default == nil {
		n.Default = []string{}
	}
	return n, nil
}

// New starts a settings document for one VM from the CPI config.
func New(agentID, vmCID string, agent config.Agent, env map[string]any) Settings {
	ntp := agent.NTP
	if ntp == nil {
		ntp = []string{}
	}
	if env == nil {
		env = map[string]any{}
	}
	return Settings{
		AgentID:   agentID,
		VM:        VM{Name: vmCID, ID: vmCID},
		Mbus:      agent.Mbus,
		NTP:       ntp,
		Blobstore: agent.Blobstore,
		Networks:  map[string]Network{},
		Disks:     Disks{Persistent: map[string]disk.Hint{}},
		Env:       env,
	}
}

// MetaData is ec2/latest/meta-data.json (and openstack's meta_data.json).
type MetaData struct {
	InstanceID string               `json:"instance-id"`
	UUID       string               `json:"uuid"`
	Hostname   string               `json:"hostname"`
	PublicKeys map[string]PublicKey `json:"public-keys"`
}

// PublicKey is an SSH key the agent installs for vcap.
type PublicKey struct {
	OpenSSHKey string `json:"openssh-key"`
}

// NewMetaData describes the VM; keys are optional.
func NewMetaData(vmCID string, sshKeys []string) MetaData {
	keys := map[string]PublicKey{}
	for i, k := range sshKeys {
		keys[fmt.Sprint(i)] = PublicKey{OpenSSHKey: k}
	}
	return MetaData{InstanceID: vmCID, UUID: vmCID, Hostname: vmCID, PublicKeys: keys}
}
