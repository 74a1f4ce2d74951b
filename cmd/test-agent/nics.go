package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

const busybox = "/bin/busybox"

// dhcpScript is udhcpc's hook: it puts the leased address on the NIC and,
// when offered, the default route.
const dhcpScript = `#!/bin/busybox sh
case "$1" in
bound|renew)
  /bin/busybox ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
  if [ -n "$router" ]; then
    for r in $router; do /bin/busybox route add default gw "$r" dev "$interface" && break; done
  fi ;;
deconfig)
  /bin/busybox ifconfig "$interface" 0.0.0.0 ;;
esac
exit 0
`

const dhcpScriptPath = "/run/udhcpc.script"

// interfaceMACs maps each NIC's lower-case MAC to its name.
func interfaceMACs() (map[string]string, error) {
	paths, err := filepath.Glob("/sys/class/net/*/address")
	if err != nil {
		return nil, err
	}
	macs := map[string]string{}
	for _, p := range paths {
		name := filepath.Base(filepath.Dir(p))
		raw, err := os.ReadFile(p)
		if err != nil || name == "lo" {
			continue
		}
		macs[strings.ToLower(strings.TrimSpace(string(raw)))] = name
	}
	return macs, nil
}

// waitForNICs waits until every settings MAC has a NIC (virtio_net probes
// asynchronously) or the time is up, and returns the last matchNICs result:
// the plans, and as errors what is still missing.
func waitForNICs(s settings, wait time.Duration) ([]nicPlan, []error) {
	deadline := time.Now().Add(wait)
	for {
		macs, _ := interfaceMACs()
		plans, errs := matchNICs(s.Networks, macs)
		if len(errs) == 0 || time.Now().After(deadline) {
			return plans, errs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// configureNetworks brings up each settings network on its NIC: static
// addresses at once, DHCP ones in the background. Every configured NIC is
// reported; a network without its NIC is reported as an error.
func configureNetworks(rep *reporter, s settings) {
	run(busybox, "ip", "link", "set", "lo", "up")
	plans, errs := waitForNICs(s, 10*time.Second)
	for _, err := range errs {
		rep.fail("matching networks to NICs by MAC", err)
	}
	for _, p := range plans {
		if p.Net.usesDHCP() {
			go configureDHCP(rep, p)
			continue
		}
		if err := configureStatic(p); err != nil {
			rep.fail("configuring network "+p.Network, err)
			continue
		}
		rep.report(nicReport(p, "manual", p.Net.IP))
	}
}

func nicReport(p nicPlan, kind, ip string) guestcheck.Report {
	return guestcheck.Report{Event: guestcheck.EventNIC, Network: p.Network, Type: kind, MAC: p.MAC, NIC: p.NIC, IP: ip}
}

func configureStatic(p nicPlan) error {
	prefix, err := prefixLength(p.Net.Netmask)
	if err != nil {
		return err
	}
	if net.ParseIP(p.Net.IP).To4() == nil {
		return fmt.Errorf("ip %q is not an IPv4 address", p.Net.IP)
	}
	if err := run(busybox, "ip", "addr", "add", fmt.Sprintf("%s/%d", p.Net.IP, prefix), "dev", p.NIC); err != nil {
		return err
	}
	if err := run(busybox, "ip", "link", "set", p.NIC, "up"); err != nil {
		return err
	}
	if p.Net.isDefaultGateway() && p.Net.Gateway != "" {
		return run(busybox, "ip", "route", "replace", "default", "via", p.Net.Gateway, "dev", p.NIC)
	}
	return nil
}

// configureDHCP asks for a lease and reports the NIC with what it got: the
// NIC is reported even without a lease (ip empty), since finding it by MAC
// is what the CPI is answerable for.
func configureDHCP(rep *reporter, p nicPlan) {
	if err := os.WriteFile(dhcpScriptPath, []byte(dhcpScript), 0o755); err != nil {
		rep.fail("writing the DHCP hook", err)
	}
	run(busybox, "ip", "link", "set", p.NIC, "up")
	err := run(busybox, "udhcpc", "-i", p.NIC, "-n", "-q", "-t", "5", "-T", "2", "-s", dhcpScriptPath)
	r := nicReport(p, "dynamic", ipv4Of(p.NIC))
	if err != nil {
		r.Message = "no DHCP lease: " + err.Error()
	}
	rep.report(r)
}

func ipv4Of(nic string) string {
	iface, err := net.InterfaceByName(nic)
	if err != nil {
		return ""
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}

// run runs a command and returns its output with the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
