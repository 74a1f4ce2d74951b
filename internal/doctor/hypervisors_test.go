package doctor

import (
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeEnv is a machine that has the named binaries, device nodes and files.
func fakeEnv(binaries, devices []string, files map[string]string) Env {
	return Env{
		LookPath: func(name string) (string, error) {
			for _, b := range binaries {
				if b == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", os.ErrNotExist
		},
		Stat: func(path string) (fs.FileInfo, error) {
			for _, d := range devices {
				if d == path {
					return deviceInfo{}, nil
				}
			}
			return nil, fs.ErrNotExist
		},
		ReadFile: func(path string) ([]byte, error) {
			if text, ok := files[path]; ok {
				return []byte(text), nil
			}
			return nil, fs.ErrNotExist
		},
	}
}

type deviceInfo struct{}

func (deviceInfo) Name() string       { return "dev" }
func (deviceInfo) Size() int64        { return 0 }
func (deviceInfo) Mode() fs.FileMode  { return fs.ModeDevice | fs.ModeCharDevice | 0o600 }
func (deviceInfo) ModTime() time.Time { return time.Time{} }
func (deviceInfo) IsDir() bool        { return false }
func (deviceInfo) Sys() any           { return nil }

func TestHypervisorHostChecks(t *testing.T) {
	complete := fakeEnv([]string{"VBoxManage", "xl", "vmware", "vmrun"}, []string{"/dev/vboxdrv"},
		map[string]string{"/proc/xen/capabilities": "control_d\n"})
	domU := fakeEnv(nil, nil, map[string]string{"/proc/xen/capabilities": ""})
	empty := fakeEnv(nil, nil, nil)
	cases := []struct {
		driver string
		env    Env
		want   map[string]Status // check -> status
		fixHas map[string]string // check -> a word of its fix
	}{
		{"vbox", complete, map[string]Status{"virtualbox": OK, "vboxdrv": OK}, nil},
		{"vbox", empty, map[string]Status{"virtualbox": Fail, "vboxdrv": Fail}, map[string]string{"virtualbox": "VirtualBox", "vboxdrv": "vboxconfig"}},
		{"xen", complete, map[string]Status{"xen_dom0": OK, "xl": OK}, nil},
		{"xen", domU, map[string]Status{"xen_dom0": Fail, "xl": Fail}, map[string]string{"xen_dom0": "xen-system-amd64", "xl": "xen-utils"}},
		{"xen", empty, map[string]Status{"xen_dom0": Fail}, map[string]string{"xen_dom0": "reboot"}},
		{"vmwarews", complete, map[string]Status{"vmware": OK, "vmrun": OK}, nil},
		{"vmwarews", empty, map[string]Status{"vmware": Fail, "vmrun": Fail}, map[string]string{"vmrun": "VIX"}},
		{"qemu", empty, map[string]Status{}, nil},
	}
	for _, c := range cases {
		findings := HypervisorHost(c.driver, c.env)
		got := map[string]Finding{}
		for _, f := range findings {
			got[f.Check] = f
		}
		for check, status := range c.want {
			if got[check].Status != status {
				t.Errorf("%s %s: %+v; want %s", c.driver, check, got[check], status)
			}
		}
		for check, word := range c.fixHas {
			if !strings.Contains(got[check].Fix, word) {
				t.Errorf("%s %s: fix %q; want one mentioning %q", c.driver, check, got[check].Fix, word)
			}
		}
		if c.driver == "qemu" && len(findings) != 0 {
			t.Errorf("qemu got host checks %+v", findings)
		}
	}
}

func TestDriverFixNamesThePackage(t *testing.T) {
	for driver, pkg := range map[string]string{"vbox": "libvirt-daemon-driver-vbox", "xen": "libvirt-daemon-driver-xen", "vmwarews": "libvirt0"} {
		if !strings.Contains(DriverFix(driver), pkg) {
			t.Errorf("DriverFix(%s) = %q; want it to name %s", driver, DriverFix(driver), pkg)
		}
	}
}

// A /dev/vboxdrv that is a plain file is not the driver.
func TestVBoxDrvMustBeADevice(t *testing.T) {
	file := t.TempDir() + "/vboxdrv"
	os.WriteFile(file, nil, 0o600)
	ok, detail := deviceNode(file, "VirtualBox's kernel driver")(SystemEnv())
	if ok || !strings.Contains(detail, "not a device") {
		t.Errorf("a plain file: %v %q; want refused as no device node", ok, detail)
	}
}
