package host

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
)

// Probe is the libvirt side of `cpi doctor`.
func Probe(ctx context.Context, cfg config.Config) []doctor.Finding {
	access := checkAccess(cfg)
	if p, ok := otherHypervisor(cfg.URI); ok {
		return append(access, probeHypervisor(ctx, cfg, p)...) // doctor_hypervisors.go
	}
	conn, via, err := Connect(ctx, cfg)
	if err != nil {
		return append(access, doctor.Finding{Check: "libvirtd", Status: doctor.Fail, Detail: err.Error(), Fix: connectFix(cfg.URI)})
	}
	defer conn.Disconnect()
	if u, _ := url.Parse(cfg.URI); strings.HasPrefix(u.Scheme, "lxc") {
		_, poolFinding := checkPool(conn, cfg)
		return append(access, checkVersion(conn, cfg.URI, via), checkContainers(conn, cfg), poolFinding, checkNetwork(conn, cfg.Network))
	}
	findings := append(access, checkVersion(conn, cfg.URI, via), checkDomainType(conn, cfg))
	pool, poolFinding := checkPool(conn, cfg)
	findings = append(findings, poolFinding, checkNetwork(conn, cfg.Network))
	// A session daemon runs QEMU as the CPI's user: nothing to check there.
	if u, _ := url.Parse(cfg.URI); IsLocal(cfg.URI) && !isSession(u) {
		findings = append(findings, checkQEMUAccess(conn, pool, cfg)...)
	}
	return findings
}

func connectFix(uri string) string {
	fixes := []string{
		"start the daemons: sudo virtlogd -d && sudo libvirtd -d  (or: sudo systemctl start libvirtd)",
	}
	if IsLocal(uri) {
		fixes = append(fixes,
			"check the socket: ls -l /var/run/libvirt/libvirt-sock (the CPI's user must be root or in group 'libvirt': sudo usermod -aG libvirt $USER)",
			"qemu:///session is a per-user daemon; BOSH VMs on a bridge or NAT network need qemu:///system")
	} else {
		fixes = append(fixes, "check that libvirtd listens on the network (libvirtd --listen, or the libvirtd-tcp.socket unit) and that the port is open")
	}
	return strings.Join(fixes, "\n")
}

func IsLocal(uri string) bool {
	u, err := url.Parse(uri)
	return err == nil && isLocalUnix(u)
}

func checkVersion(conn *golibvirt.Libvirt, uri, via string) doctor.Finding {
	v, err := conn.ConnectGetLibVersion()
	if err != nil {
		return doctor.Finding{Check: "libvirtd", Status: doctor.Fail, Detail: fmt.Sprintf("connected to %s but it does not answer: %v", uri, err), Fix: "restart libvirtd"}
	}
	return doctor.Finding{Check: "libvirtd", Status: doctor.OK, Detail: fmt.Sprintf("reachable at %s through %s (libvirt %d.%d.%d)", uri, via, v/1000000, v/1000%1000, v%1000)}
}

// checkContainers: an lxc host must offer exe guests of domain type lxc,
// and this CPI must be on it (the root filesystems are its directories).
func checkContainers(conn *golibvirt.Libvirt, cfg config.Config) doctor.Finding {
	const check = "containers"
	caps, err := Capabilities(conn)
	if err != nil {
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: err.Error()}
	}
	offered := slices.ContainsFunc(caps.Guests, func(g libvirtxml.CapsGuest) bool {
		return g.OSType == "exe" && slices.ContainsFunc(g.Arch.Domains, func(d libvirtxml.CapsGuestDomain) bool { return d.Type == "lxc" })
	})
	switch {
	case !offered:
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: "the host offers no exe guests of domain type lxc",
			Fix: "install libvirt-daemon-driver-lxc on the libvirt host and restart libvirtd"}
	case !IsLocal(cfg.URI):
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: "libvirt's lxc driver on a remote host: stemcells, VMs and disks are refused (their root filesystems are directories this CPI unpacks and mounts on its own machine)",
			Fix: "run the CPI on the libvirt host with uri lxc:///system"}
	}
	return doctor.Finding{Check: check, Status: doctor.OK, Detail: "lxc containers (exe guests)"}
}

// checkDomainType reports the domain type create_vm will use on the
// connected host and why, and fails when that type cannot run guests there.
func checkDomainType(conn *golibvirt.Libvirt, cfg config.Config) doctor.Finding {
	const check = "hypervisor"
	caps, err := Capabilities(conn)
	if err != nil {
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: err.Error(), Fix: "sudo apt-get install qemu-system-x86, then restart libvirtd"}
	}
	d := DecideDomainType(cfg.Hypervisor, caps)
	if !offersDomainType(caps, d.DomainType) {
		fix := "sudo apt-get install qemu-system-x86, then restart libvirtd"
		if d.DomainType == "kvm" {
			fix = "load KVM on the libvirt host (sudo modprobe kvm_intel or kvm_amd) and restart libvirtd, or set \"hypervisor\": \"auto\""
		}
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: fmt.Sprintf("domain type '%s' (%s), but the host offers no x86_64 hvm guests of that type", d.DomainType, d.Reason), Fix: fix}
	}
	switch {
	case d.Broken && d.DomainType == "kvm":
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: "domain type 'kvm': " + d.Reason,
			Fix: "set \"hypervisor\": \"auto\" (or \"qemu\") so domains use TCG, or enable VT-x/AMD-V (nested virtualization) for the host"}
	case d.DomainType == "qemu" && cfg.Hypervisor == "auto":
		return doctor.Finding{Check: check, Status: doctor.Warn, Detail: "domain type 'qemu': " + d.Reason,
			Fix: "for KVM speed: enable VT-x/AMD-V in the host's firmware (or nested virtualization in its hypervisor) and load kvm_intel or kvm_amd"}
	}
	return doctor.Finding{Check: check, Status: doctor.OK, Detail: fmt.Sprintf("domain type '%s': %s", d.DomainType, d.Reason)}
}

func checkPool(conn *golibvirt.Libvirt, cfg config.Config) (*libvirtxml.StoragePool, doctor.Finding) {
	const check = "storage_pool"
	pool, err := conn.StoragePoolLookupByName(cfg.StoragePool)
	if err != nil {
		if !IsCode(err, golibvirt.ErrNoStoragePool) {
			return nil, doctor.Finding{Check: check, Status: doctor.Fail, Detail: fmt.Sprintf("looking up '%s': %v", cfg.StoragePool, err)}
		}
		return nil, doctor.Finding{Check: check, Status: doctor.OK,
			Detail: fmt.Sprintf("'%s' does not exist yet; the CPI creates it as a directory pool at %s on first use", cfg.StoragePool, cfg.PoolDir())}
	}
	raw, err := conn.StoragePoolGetXMLDesc(pool, 0)
	var doc libvirtxml.StoragePool
	if err == nil {
		err = doc.Unmarshal(raw)
	}
	if err != nil {
		return nil, doctor.Finding{Check: check, Status: doctor.Fail, Detail: fmt.Sprintf("reading '%s': %v", cfg.StoragePool, err)}
	}
	active, _ := conn.StoragePoolIsActive(pool)
	if active != 1 {
		return &doc, doctor.Finding{Check: check, Status: doctor.Warn, Detail: fmt.Sprintf("'%s' exists but is inactive; the CPI starts it on first use", cfg.StoragePool),
			Fix: fmt.Sprintf("virsh -c %s pool-start %s && virsh -c %s pool-autostart %s", cfg.URI, cfg.StoragePool, cfg.URI, cfg.StoragePool)}
	}
	return &doc, doctor.Finding{Check: check, Status: doctor.OK, Detail: fmt.Sprintf("'%s' (%s) is active", cfg.StoragePool, doc.Type)}
}

func checkNetwork(conn *golibvirt.Libvirt, name string) doctor.Finding {
	const check = "network"
	net, err := conn.NetworkLookupByName(name)
	if err != nil {
		return doctor.Finding{Check: check, Status: doctor.Fail, Detail: fmt.Sprintf("libvirt network '%s' does not exist", name),
			Fix: fmt.Sprintf("define it (virsh net-define FILE.xml; Debian ships /usr/share/libvirt/networks/default.xml), then virsh net-start %s && virsh net-autostart %s,\nor set \"network\" in cpi.json to one of: virsh net-list --all", name, name)}
	}
	active, _ := conn.NetworkIsActive(net)
	if active != 1 {
		return doctor.Finding{Check: check, Status: doctor.Warn, Detail: fmt.Sprintf("'%s' exists but is inactive; the CPI starts it when a VM needs it", name),
			Fix: fmt.Sprintf("virsh net-start %s && virsh net-autostart %s", name, name)}
	}
	return doctor.Finding{Check: check, Status: doctor.OK, Detail: fmt.Sprintf("'%s' is active", name)}
}

// checkQEMUAccess looks for the permission and AppArmor traps that keep
// QEMU (running as its own user) from opening the pool's files.
func checkQEMUAccess(conn *golibvirt.Libvirt, pool *libvirtxml.StoragePool, cfg config.Config) []doctor.Finding {
	const check = "qemu_file_access"
	dir := cfg.PoolDir()
	if pool != nil && pool.Target != nil && pool.Target.Path != "" {
		dir = pool.Target.Path
	}
	var findings []doctor.Finding
	if blocked := doctor.BlockedDirs(dir); len(blocked) > 0 {
		findings = append(findings, doctor.Finding{Check: check, Status: doctor.Fail,
			Detail: fmt.Sprintf("QEMU runs as its own user and cannot enter %s on the way to the pool %s", strings.Join(blocked, ", "), dir),
			Fix:    "sudo chmod o+x " + strings.Join(blocked, " ") + "\n(or set \"store_dir\" under /var/lib, which QEMU can reach)"})
	} else {
		findings = append(findings, doctor.Finding{Check: check, Status: doctor.OK, Detail: fmt.Sprintf("every directory on the way to %s is enterable by QEMU's user", dir)})
	}
	if apparmorEnabled() && !strings.HasPrefix(dir, "/var/lib/libvirt/") {
		findings = append(findings, doctor.Finding{Check: "apparmor", Status: doctor.Warn,
			Detail: fmt.Sprintf("AppArmor is on and the pool %s is outside /var/lib/libvirt: libvirt's virt-aa-helper labels each disk, but backing files and console logs elsewhere can be refused", dir),
			Fix:    fmt.Sprintf("echo '  \"%s/**\" rwk,' | sudo tee -a /etc/apparmor.d/local/abstractions/libvirt-qemu && sudo systemctl reload apparmor\n(watch for 'apparmor=\"DENIED\"' in dmesg when a VM fails to start)", strings.TrimSuffix(cfg.StoreDir, "/"))})
	}
	return findings
}

func apparmorEnabled() bool {
	raw, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.TrimSpace(string(raw)) == "Y"
}
