package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// TestDynamicNetworkAddressDiscovered boots the test stemcell on a dynamic
// BOSH network over a CPI-made NAT network with a DHCP range: the guest
// leases an address (udhcpc in the test agent) and create_vm, waiting up
// to dynamic_ip_wait, answers that address in its networks.
func TestDynamicNetworkAddressDiscovered(t *testing.T) {
	stemcell := importBootableStemcell(t)
	name := fmt.Sprintf("cpi-dyn-%d", os.Getpid())
	subnet := fmt.Sprintf("10.195.%d", os.Getpid()%250)
	t.Cleanup(func() { virsh("net-destroy", name); virsh("net-undefine", name) })
	r := createManaged(t, map[string]any{"type": "manual", "range": subnet + ".0/24", "gateway": subnet + ".1",
		"cloud_properties": map[string]any{"name": name, "mode": "nat", "dhcp_range": subnet + ".100-" + subnet + ".150"}})
	t.Cleanup(func() { call(t, "delete_network", r.cid) })

	client := suite.Client
	client.Context = map[string]any{"dynamic_ip_wait": 300}
	networks := map[string]any{"dyn": map[string]any{"type": "dynamic", "dns": []string{subnet + ".1"},
		"default": []string{"dns", "gateway"}, "cloud_properties": r.props}}
	start := time.Now()
	raw, run, err := client.Call("create_vm", "agent-dyn", stemcell, map[string]any{"cpus": 1, "memory": 384, "ephemeral_disk": 1024}, networks, []string{}, map[string]any{})
	checkRun(t, run, nil)
	if err != nil {
		t.Fatalf("create_vm: %v\n%s", err, run.Stderr)
	}
	var result []json.RawMessage
	var cid string
	if json.Unmarshal(raw, &result) != nil || len(result) != 2 || json.Unmarshal(result[0], &cid) != nil {
		t.Fatalf("create_vm answered %s; want [vm_cid, networks]", raw)
	}
	t.Cleanup(func() { call(t, "delete_vm", cid) })
	t.Logf("create_vm with a dynamic address took %.1f s", time.Since(start).Seconds())
	var answered map[string]struct {
		Type string `json:"type"`
		IP   string `json:"ip"`
	}
	if err := json.Unmarshal(result[1], &answered); err != nil {
		t.Fatalf("networks %s: %v", result[1], err)
	}
	ip := net.ParseIP(answered["dyn"].IP).To4()
	if answered["dyn"].Type != "dynamic" || ip == nil || !strings.HasPrefix(ip.String(), subnet+".") || ip[3] < 100 || ip[3] > 150 {
		t.Fatalf("create_vm answered networks %s; want network dyn with an address of %s.100-150\nstderr:\n%s", result[1], subnet, run.Stderr)
	}

	// The guest's own word: the NIC of network dyn has that address.
	rep, _, err := suite.WaitForReport(cid, 0, 3*time.Minute, "the dynamic NIC's report", func(r guestcheck.Report) bool {
		return r.Event == guestcheck.EventNIC && r.Network == "dyn" && r.IP != ""
	})
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, suite.ConsoleLog(cid))
	}
	if rep.IP != ip.String() && !strings.HasPrefix(rep.IP, ip.String()+"/") {
		t.Fatalf("guest reports %s on network dyn; create_vm answered %s", rep.IP, ip)
	}
}
