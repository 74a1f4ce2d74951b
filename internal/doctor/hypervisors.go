package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
)

// What the VirtualBox, Xen and VMware hosts need, checked on this machine
// when the URI is local (the hypervisor's host is the CPI's): the
// hypervisor's own tools and kernel side. Whether libvirtd has the
// driver, and what the driver offers, the libvirt side checks through
// libvirt's API (internal/libvirt/host), on local and remote hosts alike.

// Env is how the checks see this machine: the real one (SystemEnv) or a
// made-up one in tests.
type Env struct {
	LookPath func(name string) (string, error)
	Stat     func(path string) (fs.FileInfo, error)
	ReadFile func(path string) ([]byte, error)
}

// SystemEnv is this machine.
func SystemEnv() Env { return Env{LookPath: exec.LookPath, Stat: os.Stat, ReadFile: os.ReadFile} }

// hostCheck is one thing a hypervisor's host must have.
type hostCheck struct {
	check   string
	present func(Env) (bool, string) // and what was found, or what is missing
	fix     string
}

// hostChecks are the checks per libvirt driver.
var hostChecks = map[string][]hostCheck{
	"vbox": {
		{"virtualbox", onPath("VBoxManage"),
			"install VirtualBox 6.1 or later on this host (Oracle's packages; libvirt's vbox driver loads VirtualBox's VBoxXPCOMC library from its install directory)"},
		{"vboxdrv", deviceNode("/dev/vboxdrv", "VirtualBox's kernel driver"),
			"sudo /sbin/vboxconfig  (builds and loads vboxdrv for the running kernel; or: sudo modprobe vboxdrv)"},
	},
	"xen": {
		{"xen_dom0", xenDom0,
			"this host must run as Xen's dom0: sudo apt-get install xen-system-amd64, then reboot into the boot entry 'Debian GNU/Linux, with Xen hypervisor'"},
		{"xl", onPath("xl"),
			"sudo apt-get install xen-utils-4.17  (libxl and the xl tool libvirt's libxl driver works beside)"},
	},
	"vmwarews": {
		{"vmware", onPath("vmware"),
			"install VMware Workstation on this host (libvirt's vmware driver drives it; Player is vmwareplayer:///session)"},
		{"vmrun", onPath("vmrun"),
			"install the VIX API that ships vmrun (part of VMware Workstation Pro) and put vmrun on libvirtd's PATH"},
	},
}

// driverPackages are the Debian packages that give libvirtd each driver.
var driverPackages = map[string]string{
	"vbox":     "sudo apt-get install libvirt-daemon-driver-vbox, then restart libvirtd (the vbox driver runs inside the user's libvirtd, for vbox:///session)",
	"xen":      "sudo apt-get install libvirt-daemon-driver-xen, then restart libvirtd (the libxl driver; xen:///system)",
	"vmwarews": "libvirt's vmware driver is part of libvirt's own library (libvirt0) when it was built with it: check `virsh -c vmwarews:///session version` on the host; Debian's libvirt0 carries it",
}

// HypervisorHost checks this machine for what driver's hypervisor needs;
// nothing for drivers without host checks (qemu and lxc are checked
// through libvirt).
func HypervisorHost(driver string, env Env) []Finding {
	var findings []Finding
	for _, c := range hostChecks[driver] {
		ok, detail := c.present(env)
		if ok {
			findings = append(findings, Finding{Check: c.check, Status: OK, Detail: detail})
			continue
		}
		findings = append(findings, Finding{Check: c.check, Status: Fail, Detail: detail, Fix: c.fix})
	}
	return findings
}

// HasHostChecks tells whether driver's host is checked by HypervisorHost.
func HasHostChecks(driver string) bool { return len(hostChecks[driver]) > 0 }

// DriverFix is what gives libvirtd the driver of a URI it cannot open.
func DriverFix(driver string) string { return driverPackages[driver] }

func onPath(name string) func(Env) (bool, string) {
	return func(env Env) (bool, string) {
		path, err := env.LookPath(name)
		if err != nil {
			return false, fmt.Sprintf("%s is not on PATH", name)
		}
		return true, fmt.Sprintf("%s at %s", name, path)
	}
}

func deviceNode(path, what string) func(Env) (bool, string) {
	return func(env Env) (bool, string) {
		info, err := env.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return false, fmt.Sprintf("%s is missing: %s is not loaded", path, what)
		case err != nil:
			return false, fmt.Sprintf("%s: %v", path, err)
		case info.Mode()&fs.ModeDevice == 0:
			return false, fmt.Sprintf("%s is not a device node", path)
		}
		return true, fmt.Sprintf("%s (%s) is there", path, what)
	}
}

// xenDom0: /proc/xen/capabilities says control_d in the control domain
// only (a domU or a host booted without Xen has no such line, or no file).
func xenDom0(env Env) (bool, string) {
	raw, err := env.ReadFile("/proc/xen/capabilities")
	if err != nil {
		return false, "no /proc/xen/capabilities: this host is not running on the Xen hypervisor"
	}
	if !strings.Contains(string(raw), "control_d") {
		return false, "/proc/xen/capabilities has no control_d: this is a Xen guest (domU), not dom0"
	}
	return true, "this host is Xen's dom0 (/proc/xen/capabilities: control_d)"
}
