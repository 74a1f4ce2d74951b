package host

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

// hypervisorNames are the products behind each driver, for findings.
var hypervisorNames = map[string]string{"vbox": "VirtualBox", "xen": "Xen", "vmwarews": "VMware Workstation"}

// otherHypervisor is the profile of a VirtualBox, Xen or VMware URI
// (these are checked by probeHypervisor), or false.
func otherHypervisor(uri string) (hypervisor.Profile, bool) {
	p, err := hypervisor.ForURI(uri)
	if err != nil || hypervisorNames[p.Driver] == "" {
		return hypervisor.Profile{}, false
	}
	return p, true
}

// probeHypervisor checks a VirtualBox, Xen or VMware host: the
// hypervisor's own tools and kernel side when the host is this machine,
// then through libvirt's API whether libvirtd has the driver (a URI it
// cannot open says "no connection driver available"), the hypervisor's
// version, the guests it offers, what the driver cannot do for the CPI,
// and, where volumes come from libvirt's storage, the pool and network.
func probeHypervisor(ctx context.Context, cfg config.Config, p hypervisor.Profile) []doctor.Finding {
	findings := hostFindings(cfg, p)
	conn, via, err := Connect(ctx, cfg)
	if err != nil {
		return append(findings, doctor.Finding{Check: "libvirtd", Status: doctor.Fail, Detail: err.Error(), Fix: driverConnectFix(cfg.URI, p, err)})
	}
	defer conn.Disconnect()
	findings = append(findings, checkVersion(conn, cfg.URI, via), checkHypervisorVersion(conn, p))
	caps, capsErr := Capabilities(conn)
	findings = append(findings, guestTypeFinding(p, caps, capsErr), refusalsFinding(p))
	if p.Refusal(hypervisor.OpImportStemcell) == "" {
		_, poolFinding := checkPool(conn, cfg)
		findings = append(findings, poolFinding, checkNetwork(conn, cfg.Network))
	}
	return findings
}

// hostFindings: on this machine the hypervisor's tools are looked for; a
// remote host's are not visible from here.
func hostFindings(cfg config.Config, p hypervisor.Profile) []doctor.Finding {
	if IsLocal(cfg.URI) {
		return doctor.HypervisorHost(p.Driver, doctor.SystemEnv())
	}
	return []doctor.Finding{{Check: "hypervisor_host", Status: doctor.Warn,
		Detail: fmt.Sprintf("%s runs on another host: its tools and kernel modules are not checked from here, only what libvirt reports", hypervisorNames[p.Driver]),
		Fix:    fmt.Sprintf("run cpi doctor on that host with \"uri\": \"%s\"", p.URI("", ""))}}
}

// driverConnectFix is the fix for a connection that failed: the driver
// package when libvirtd has no such driver, vmrun when VMware's driver
// found none, else how to reach libvirtd.
func driverConnectFix(uri string, p hypervisor.Profile, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, noDriver):
		return doctor.DriverFix(p.Driver)
	case strings.Contains(msg, "vmrun"):
		return "put VMware's vmrun (VMware Workstation Pro, VIX API) on the PATH of the libvirtd that serves " + p.URI("", "")
	}
	return connectFix(uri)
}

// checkHypervisorVersion reports the hypervisor's version as its driver
// tells it (VirtualBox's, Xen's, Workstation's).
func checkHypervisorVersion(conn *golibvirt.Libvirt, p hypervisor.Profile) doctor.Finding {
	name := hypervisorNames[p.Driver]
	v, err := conn.ConnectGetVersion()
	if err != nil {
		return doctor.Finding{Check: "hypervisor", Status: doctor.Warn, Detail: fmt.Sprintf("libvirt's %s driver does not tell %s's version: %v", p.Driver, name, err)}
	}
	return doctor.Finding{Check: "hypervisor", Status: doctor.OK, Detail: fmt.Sprintf("%s %d.%d.%d", name, v/1000000, v/1000%1000, v%1000)}
}

// guestTypeFinding: the host must offer hvm guests of the profile's
// domain type (vbox, xen, vmware).
func guestTypeFinding(p hypervisor.Profile, caps libvirtxml.Caps, err error) doctor.Finding {
	const check = "guests"
	if err != nil {
		return doctor.Finding{Check: check, Status: doctor.Warn, Detail: fmt.Sprintf("libvirt's %s driver reports no capabilities: %v", p.Driver, err)}
	}
	offered := slices.ContainsFunc(caps.Guests, func(g libvirtxml.CapsGuest) bool {
		return g.OSType == "hvm" && slices.ContainsFunc(g.Arch.Domains, func(d libvirtxml.CapsGuestDomain) bool { return d.Type == p.DomainType })
	})
	if !offered {
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: fmt.Sprintf("the host offers no hvm guests of domain type '%s'", p.DomainType),
			Fix: fmt.Sprintf("%s must run fully virtualized guests on this host: %s", hypervisorNames[p.Driver], doctor.DriverFix(p.Driver))}
	}
	return doctor.Finding{Check: check, Status: doctor.OK, Detail: fmt.Sprintf("hvm guests of domain type '%s'", p.DomainType)}
}

// refusalsFinding says which CPI methods the driver answers NotSupported,
// a failure when create_vm is one (no BOSH VM can run there).
func refusalsFinding(p hypervisor.Profile) doctor.Finding {
	const check = "cpi_methods"
	if len(p.Refused) == 0 {
		return doctor.Finding{Check: check, Status: doctor.OK, Detail: fmt.Sprintf("libvirt's %s driver does every CPI method", p.Driver)}
	}
	ops := make([]string, 0, len(p.Refused))
	for op := range p.Refused {
		ops = append(ops, string(op))
	}
	sort.Strings(ops)
	status := doctor.Warn
	if p.Refusal(hypervisor.OpCreateVM) != "" {
		status = doctor.Fail
	}
	return doctor.Finding{Check: check, Status: status,
		Detail: fmt.Sprintf("libvirt's %s driver cannot do %s; they answer NotSupported (create_vm: %s)", p.Driver, strings.Join(ops, ", "), p.Refusal(hypervisor.OpCreateVM)),
		Fix:    "run BOSH VMs on this host's QEMU/KVM (\"uri\": \"qemu:///system\"); these drivers are offered for the domains the CPI would define, checked against libvirt's schema only"}
}
