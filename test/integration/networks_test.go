package integration

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// createdNetwork is a BOSH manual network whose cloud_properties ask the
// CPI to make libvirt network name in mode from the VM's subnet.
func createdNetwork(name, mode, subnet string, hostPart int) map[string]any {
	return map[string]any{"private": map[string]any{
		"type": "manual", "ip": fmt.Sprintf("%s.%d", subnet, hostPart), "netmask": "255.255.255.0",
		"gateway": subnet + ".254", "dns": []string{subnet + ".254"}, "default": []string{"dns", "gateway"},
		"cloud_properties": map[string]any{"name": name, "mode": mode},
	}}
}

// networkXML is what the suite reads of `virsh net-dumpxml`: it looks at
// the network as an operator would, not through the CPI's libvirt types.
type networkXML struct {
	Forward *struct {
		Mode string `xml:"mode,attr"`
	} `xml:"forward"`
	IPs []struct {
		Address string `xml:"address,attr"`
		Prefix  uint   `xml:"prefix,attr"`
		DHCP    *struct {
			Ranges []struct {
				Start string `xml:"start,attr"`
				End   string `xml:"end,attr"`
			} `xml:"range"`
			Hosts []dhcpHost `xml:"host"`
		} `xml:"dhcp"`
	} `xml:"ip"`
}

type dhcpHost struct {
	MAC  string `xml:"mac,attr"`
	Name string `xml:"name,attr"`
	IP   string `xml:"ip,attr"`
}

func networkDoc(t *testing.T, name string) networkXML {
	t.Helper()
	var doc networkXML
	if err := xml.Unmarshal([]byte(mustVirsh(t, "net-dumpxml", name)), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestNetworkCreatedFromSettingsWithReservations(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	name := fmt.Sprintf("cpi-netit-%d", os.Getpid())
	subnet := fmt.Sprintf("10.199.%d", os.Getpid()%250)
	t.Cleanup(func() { virsh("net-destroy", name); virsh("net-undefine", name) })

	// Four create_vm calls at once on a network that does not exist yet: one network.
	vms := make([]string, 4)
	var wg sync.WaitGroup
	for i := range vms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cid, run, err := suite.Client.CreateVM(fmt.Sprintf("agent-net-%d", i), stemcell, map[string]any{"cpus": 1, "memory": 256, "ephemeral_disk": 256},
				createdNetwork(name, "nat", subnet, 10+i), map[string]any{}, nil)
			if err != nil {
				t.Errorf("create_vm %d: %v\n%s", i, err, run.Stderr)
				return
			}
			vms[i] = cid
			t.Cleanup(func() { call(t, "delete_vm", cid) })
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	doc := networkDoc(t, name)
	if doc.Forward == nil || doc.Forward.Mode != "nat" || len(doc.IPs) != 1 || doc.IPs[0].Address != subnet+".254" || doc.IPs[0].Prefix != 24 {
		t.Fatalf("network %s = forward %+v ips %+v; want NAT with the gateway %s.254/24", name, doc.Forward, doc.IPs, subnet)
	}
	if doc.IPs[0].DHCP == nil || len(doc.IPs[0].DHCP.Ranges) != 0 {
		t.Fatalf("want reservations and no DHCP range nobody asked for: %+v", doc.IPs[0].DHCP)
	}
	if hosts := doc.IPs[0].DHCP.Hosts; len(hosts) != len(vms) {
		t.Fatalf("DHCP reservations %+v; want one per VM (%d)", hosts, len(vms))
	}
	if out := mustVirsh(t, "net-info", name); !strings.Contains(out, "Autostart:      yes") {
		t.Errorf("created network does not autostart:\n%s", out)
	}
	// delete_vm takes its reservation away.
	if r := call(t, "delete_vm", vms[0]); r.Response.Error != nil {
		t.Fatal(r.Response.Error)
	}
	for _, h := range dhcpHosts(networkDoc(t, name)) {
		if h.IP == subnet+".10" {
			t.Errorf("reservation of the deleted VM is still there: %+v", h)
		}
	}

	// Another created network on an overlapping subnet is refused, naming both.
	other := name + "-b"
	cid, run, err := suite.Client.CreateVM("agent-overlap", stemcell, map[string]any{"cpus": 1, "memory": 256, "ephemeral_disk": 256},
		createdNetwork(other, "isolated", subnet, 50), map[string]any{}, nil)
	if err == nil {
		call(t, "delete_vm", cid)
		virsh("net-destroy", other)
		virsh("net-undefine", other)
		t.Fatal("create_vm made a network overlapping another")
	}
	if !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), name) {
		t.Fatalf("overlap error should name both networks: %v\n%s", err, run.Stderr)
	}
	if _, err := virsh("net-info", other); err == nil {
		t.Errorf("the refused network %s exists", other)
	}
}

func TestForeignNetworkGetsNoReservation(t *testing.T) {
	stemcell := importStemcell(t, "1G")
	before := networkDoc(t, suite.Network)
	cid := createVMOnNetworks(t, stemcell, suite.Networks(61))
	after := networkDoc(t, suite.Network)
	if len(dhcpHosts(after)) != len(dhcpHosts(before)) {
		t.Fatalf("the CPI changed network %s, which it did not make: hosts %+v", suite.Network, dhcpHosts(after))
	}
	call(t, "delete_vm", cid)
}

func createVMOnNetworks(t *testing.T, stemcell string, networks map[string]any) string {
	t.Helper()
	cid, run, err := suite.Client.CreateVM("agent-"+t.Name(), stemcell, map[string]any{"cpus": 1, "memory": 256, "ephemeral_disk": 256}, networks, map[string]any{}, nil)
	checkRun(t, run, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, run.Stderr)
	}
	t.Cleanup(func() { call(t, "delete_vm", cid) })
	return cid
}

func dhcpHosts(doc networkXML) []dhcpHost {
	if len(doc.IPs) == 0 || doc.IPs[0].DHCP == nil {
		return nil
	}
	return doc.IPs[0].DHCP.Hosts
}
