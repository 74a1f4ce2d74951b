package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
)

// managedResult is create_network's answer as the director reads it:
// [cid, {range, gateway, reserved}, cloud_properties].
type managedResult struct {
	cid   string
	addrs struct {
		Range    string   `json:"range"`
		Gateway  string   `json:"gateway"`
		Reserved []string `json:"reserved"`
	}
	props map[string]any
}

func createManaged(t *testing.T, def map[string]any) managedResult {
	t.Helper()
	raw := mustCall(t, "create_network", def)
	var parts []json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil || len(parts) != 3 {
		t.Fatalf("create_network answered %s; want [cid, addresses, cloud_properties]", raw)
	}
	var r managedResult
	r.cid = resultString(t, parts[0])
	if err := json.Unmarshal(parts[1], &r.addrs); err != nil {
		t.Fatalf("address properties %s: %v", parts[1], err)
	}
	if err := json.Unmarshal(parts[2], &r.props); err != nil {
		t.Fatalf("cloud_properties %s: %v", parts[2], err)
	}
	return r
}

// TestManagedNetworkLifecycle calls create_network and delete_network as
// the director's managed networks do (CreateNetworkStage, the orphan
// network cleanup), with a VM on the subnet in between.
func TestManagedNetworkLifecycle(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	name := fmt.Sprintf("cpi-mnet-%d", os.Getpid())
	subnet := fmt.Sprintf("10.198.%d", os.Getpid()%250)
	t.Cleanup(func() { virsh("net-destroy", name); virsh("net-undefine", name) })
	def := map[string]any{"type": "manual", "range": subnet + ".0/24", "gateway": subnet + ".254",
		"cloud_properties": map[string]any{"name": name, "mode": "isolated", "dhcp_range": subnet + ".200-" + subnet + ".220"}}

	r := createManaged(t, def)
	if r.cid != name || r.addrs.Range != subnet+".0/24" || r.addrs.Gateway != subnet+".254" || len(r.props) != 1 || r.props["name"] != name {
		t.Fatalf("create_network answered %+v; want cid %s, its range and gateway, cloud_properties naming it", r, name)
	}
	if want := subnet + ".200 - " + subnet + ".220"; len(r.addrs.Reserved) != 1 || r.addrs.Reserved[0] != want {
		t.Fatalf("reserved %v; want the DHCP range %s kept from the director's static IPs", r.addrs.Reserved, want)
	}
	doc := networkDoc(t, name)
	if doc.Forward != nil || len(doc.IPs) != 1 || doc.IPs[0].Address != subnet+".254" || doc.IPs[0].Prefix != 24 ||
		doc.IPs[0].DHCP == nil || len(doc.IPs[0].DHCP.Ranges) != 1 || doc.IPs[0].DHCP.Ranges[0].Start != subnet+".200" {
		t.Fatalf("network %s = %+v; want isolated, gateway %s.254/24, DHCP %s.200-220", name, doc, subnet, subnet)
	}

	// A retry (the director's after a kill) gets the same network; one a
	// killed call left defined but not started is started.
	mustVirsh(t, "net-destroy", name)
	if again := createManaged(t, def); again.cid != name {
		t.Fatalf("second create_network answered %s; want %s", again.cid, name)
	}
	if out := mustVirsh(t, "net-info", name); !strings.Contains(out, "Active:         yes") || !strings.Contains(out, "Autostart:      yes") {
		t.Fatalf("create_network did not start the inactive network:\n%s", out)
	}

	// The same name asked for with another subnet is refused, network kept.
	other := map[string]any{"type": "manual", "range": "10.197.0.0/24", "cloud_properties": map[string]any{"name": name}}
	run := call(t, "create_network", other)
	wantError(t, run, "CloudError")
	if !strings.Contains(run.Response.Error.Message, name) || !strings.Contains(run.Response.Error.Message, "10.197.0.0/24") {
		t.Fatalf("refusal should name the network and both subnets: %s", run.Response.Error.Message)
	}

	// A VM on the subnet, with the cloud_properties the director got back.
	networks := map[string]any{"managed": map[string]any{
		"type": "manual", "ip": subnet + ".10", "netmask": "255.255.255.0", "gateway": subnet + ".254",
		"dns": []string{subnet + ".254"}, "default": []string{"dns", "gateway"}, "cloud_properties": r.props}}
	vmCID, vrun, err := suite.Client.CreateVM("agent-managed", stemcell, map[string]any{"cpus": 1, "memory": 256, "ephemeral_disk": 256}, networks, map[string]any{}, nil)
	checkRun(t, vrun, nil)
	if err != nil {
		t.Fatalf("create_vm on the managed network: %v\n%s", err, vrun.Stderr)
	}
	vmDeleted := false
	t.Cleanup(func() {
		if !vmDeleted {
			call(t, "delete_vm", vmCID)
		}
	})
	if hosts := dhcpHosts(networkDoc(t, name)); len(hosts) != 1 || hosts[0].IP != subnet+".10" || hosts[0].Name != "agent-managed" {
		t.Fatalf("DHCP reservations %+v; want the VM's", hosts)
	}

	// delete_network refuses while the VM is on it, naming the VM.
	run = call(t, "delete_network", name)
	wantError(t, run, "CloudError")
	if !strings.Contains(run.Response.Error.Message, vmCID) || !run.Response.Error.OkToRetry {
		t.Fatalf("delete_network of a network in use should name VM %s and be ok_to_retry: %+v", vmCID, run.Response.Error)
	}
	mustVirsh(t, "net-info", name)

	mustCall(t, "delete_vm", vmCID)
	vmDeleted = true
	mustCall(t, "delete_network", name)
	if _, err := virsh("net-info", name); err == nil {
		t.Fatalf("network %s is still there after delete_network", name)
	}
	wantError(t, call(t, "delete_network", name), "NetworkNotFound")
	wantError(t, call(t, "delete_network", "../etc"), "NetworkNotFound")
}

// TestManagedNetworkLeavesForeignNetworks: a network the CPI did not make
// is never taken as a managed one nor removed.
func TestManagedNetworkLeavesForeignNetworks(t *testing.T) {
	name := fmt.Sprintf("cpi-foreign-%d", os.Getpid())
	subnet := fmt.Sprintf("10.196.%d", os.Getpid()%250)
	xml := fmt.Sprintf("<network><name>%s</name><ip address='%s.1' prefix='24'/></network>", name, subnet)
	file := t.TempDir() + "/net.xml"
	if err := os.WriteFile(file, []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	mustVirsh(t, "net-define", file)
	t.Cleanup(func() { virsh("net-undefine", name) })

	run := call(t, "create_network", map[string]any{"type": "manual", "range": subnet + ".0/24", "cloud_properties": map[string]any{"name": name}})
	wantError(t, run, "CloudError")
	if !strings.Contains(run.Response.Error.Message, "not made by this CPI") {
		t.Fatalf("create_network on a foreign network: %s", run.Response.Error.Message)
	}
	run = call(t, "delete_network", name)
	wantError(t, run, "CloudError")
	if !strings.Contains(run.Response.Error.Message, "not made by this CPI") {
		t.Fatalf("delete_network of a foreign network: %s", run.Response.Error.Message)
	}
	if out := mustVirsh(t, "net-info", name); !strings.Contains(out, "Active:         no") {
		t.Fatalf("the foreign network was changed:\n%s", out)
	}
}

// TestManagedNetworkFromNetmaskBits: a managed subnet that gives only
// netmask_bits gets the first free block of that size in
// managed_network_pool (default 10.254.0.0/16). Two create_network calls at
// once get two blocks that overlap nothing, each answered with its range
// and gateway as the director records them.
func TestManagedNetworkFromNetmaskBits(t *testing.T) {
	def := map[string]any{"type": "manual", "netmask_bits": 28, "cloud_properties": map[string]any{"mode": "isolated"}}
	request := suite.Client.Request("create_network", def)
	runs := make([]cpiclient.Run, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i], errs[i] = suite.Client.RunRaw(request)
		}()
	}
	wg.Wait()
	_, pool, _ := net.ParseCIDR("10.254.0.0/16")
	var subnets []*net.IPNet
	for i, run := range runs {
		run = checkRun(t, run, errs[i])
		if e := run.Response.Error; e != nil {
			t.Fatalf("create_network %d: %s: %s\n%s", i, e.Type, e.Message, run.Stderr)
		}
		var parts []json.RawMessage
		if err := json.Unmarshal(run.Response.Result, &parts); err != nil || len(parts) != 3 {
			t.Fatalf("create_network answered %s", run.Response.Result)
		}
		cid := resultString(t, parts[0])
		t.Cleanup(func() { virsh("net-destroy", cid); virsh("net-undefine", cid) })
		var addrs struct{ Range, Gateway string }
		if err := json.Unmarshal(parts[1], &addrs); err != nil {
			t.Fatal(err)
		}
		_, subnet, err := net.ParseCIDR(addrs.Range)
		if err != nil || !pool.Contains(subnet.IP) || subnet.String() != addrs.Range || !strings.HasSuffix(addrs.Range, "/28") {
			t.Fatalf("create_network %d answered range %q; want an aligned /28 of %s", i, addrs.Range, pool)
		}
		gateway := net.IP(subnet.IP).To4()
		gateway = net.IPv4(gateway[0], gateway[1], gateway[2], gateway[3]+1)
		if addrs.Gateway != gateway.String() {
			t.Fatalf("create_network %d: gateway %q; want the range's first address %s", i, addrs.Gateway, gateway)
		}
		doc := networkDoc(t, cid)
		if doc.Forward != nil || len(doc.IPs) != 1 || doc.IPs[0].Address != addrs.Gateway || doc.IPs[0].Prefix != 28 {
			t.Fatalf("libvirt network %s: %+v; want isolated with %s/28", cid, doc, addrs.Gateway)
		}
		subnets = append(subnets, subnet)
	}
	if subnets[0].Contains(subnets[1].IP) || subnets[1].Contains(subnets[0].IP) {
		t.Fatalf("two create_network calls at once got overlapping subnets %s and %s", subnets[0], subnets[1])
	}
	for i := range runs {
		var parts []json.RawMessage
		json.Unmarshal(runs[i].Response.Result, &parts)
		mustCall(t, "delete_network", resultString(t, parts[0]))
	}

	// Named in cloud_properties, the same subnet asked for again (a retry
	// after a kill) gets the network and block the first call made.
	name := fmt.Sprintf("cpi-mnet-bits-%d", os.Getpid())
	t.Cleanup(func() { virsh("net-destroy", name); virsh("net-undefine", name) })
	named := map[string]any{"type": "manual", "netmask_bits": 29, "cloud_properties": map[string]any{"name": name, "mode": "isolated"}}
	first, again := createManaged(t, named), createManaged(t, named)
	if first.cid != name || again.cid != name || first.addrs.Range != again.addrs.Range || !strings.HasSuffix(first.addrs.Range, "/29") {
		t.Fatalf("named netmask_bits subnet asked twice: %+v then %+v; want %s with one /29 both times", first, again, name)
	}
	// The same name for another size is another subnet: refused, kept.
	named["netmask_bits"] = 28
	wantError(t, call(t, "create_network", named), "CloudError")
	if doc := networkDoc(t, name); len(doc.IPs) != 1 || doc.IPs[0].Prefix != 29 {
		t.Fatalf("network %s changed by a refused create_network: %+v", name, doc)
	}
	mustCall(t, "delete_network", name)

	wantError(t, call(t, "create_network", map[string]any{"type": "manual", "netmask_bits": 31}), "CpiError")
	// A block larger than the pool cannot be carved from it.
	wantError(t, call(t, "create_network", map[string]any{"type": "manual", "netmask_bits": 15}), "CloudError")
	wantError(t, call(t, "create_network", map[string]any{"type": "manual"}), "CpiError")
}
