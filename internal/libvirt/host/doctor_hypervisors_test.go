package host

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
)

func TestGuestTypeFinding(t *testing.T) {
	offers := func(domainType string) libvirtxml.Caps {
		return libvirtxml.Caps{Guests: []libvirtxml.CapsGuest{{OSType: "hvm",
			Arch: libvirtxml.CapsGuestArch{Name: "x86_64", Domains: []libvirtxml.CapsGuestDomain{{Type: domainType}}}}}}
	}
	cases := []struct {
		p      hypervisor.Profile
		caps   libvirtxml.Caps
		err    error
		status doctor.Status
	}{
		{hypervisor.Xen, offers("xen"), nil, doctor.OK},
		{hypervisor.Xen, offers("qemu"), nil, doctor.Fail},
		{hypervisor.VBox, offers("vbox"), nil, doctor.OK},
		{hypervisor.VMware, libvirtxml.Caps{}, errors.New("this function is not supported by the connection driver"), doctor.Warn},
	}
	for _, c := range cases {
		f := guestTypeFinding(c.p, c.caps, c.err)
		if f.Status != c.status || (f.Status == doctor.Fail && !strings.Contains(f.Fix, "libvirt-daemon-driver")) {
			t.Errorf("%s: %+v; want %s (a failure with the driver package as fix)", c.p.Driver, f, c.status)
		}
	}
}

func TestRefusalsFinding(t *testing.T) {
	cases := []struct {
		p      hypervisor.Profile
		status doctor.Status
		names  []string
	}{
		{hypervisor.Xen, doctor.OK, nil},
		{hypervisor.VBox, doctor.Fail, []string{"attach_disk", "create_vm", "set_vm_metadata", "vbox"}},
		{hypervisor.VMware, doctor.Fail, []string{"create_stemcell", "detach_disk", "vmwarews"}},
	}
	for _, c := range cases {
		f := refusalsFinding(c.p)
		if f.Status != c.status {
			t.Errorf("%s: %+v; want %s", c.p.Driver, f, c.status)
		}
		for _, name := range c.names {
			if !strings.Contains(f.Detail, name) {
				t.Errorf("%s: %q does not name %s", c.p.Driver, f.Detail, name)
			}
		}
	}
}

func TestRemoteHypervisorHostIsNotCheckedHere(t *testing.T) {
	f := hostFindings(config.Config{URI: "xen+ssh://root@192.0.2.1/system"}, hypervisor.Xen)
	if len(f) != 1 || f[0].Status != doctor.Warn || !strings.Contains(f[0].Fix, "xen:///system") {
		t.Errorf("remote xen host: %+v; want one warning pointing at doctor on that host", f)
	}
}

// Against the real libvirtd: its socket asked for the vbox, xen and
// vmwarews drivers. This machine's libvirtd has neither the vbox nor the
// libxl driver package, and its libvirt library's VMware driver finds no
// vmrun: each is a failure whose fix says what to install, and the host
// checks find none of the hypervisors' tools.
func TestProbeHypervisorsAgainstRealDaemon(t *testing.T) {
	sock := daemonSocket(t)
	cases := []struct {
		p          hypervisor.Profile
		fixHas     string
		hostChecks []string
	}{
		{hypervisor.VBox, "libvirt-daemon-driver-vbox", []string{"virtualbox", "vboxdrv"}},
		{hypervisor.Xen, "libvirt-daemon-driver-xen", []string{"xen_dom0", "xl"}},
		{hypervisor.VMware, "vmrun", []string{"vmware", "vmrun"}},
	}
	for _, c := range cases {
		t.Run(c.p.Driver, func(t *testing.T) {
			uri := c.p.URI("", "unix") + "?socket=" + url.QueryEscape(sock)
			findings := Probe(context.Background(), config.Config{URI: uri, Network: "default", StoragePool: "bosh", StoreDir: t.TempDir()})
			byCheck := map[string]doctor.Finding{}
			for _, f := range findings {
				byCheck[f.Check] = f
			}
			if f := byCheck["libvirtd"]; f.Status != doctor.Fail || !strings.Contains(f.Fix, c.fixHas) {
				t.Errorf("libvirtd: %+v; want a failure whose fix names %s", f, c.fixHas)
			}
			for _, check := range c.hostChecks {
				if f, ok := byCheck[check]; !ok || f.Status != doctor.Fail || f.Fix == "" {
					t.Errorf("%s: %+v; want a failure with a fix (this machine has no %s)", check, f, c.p.Driver)
				}
			}
			var out strings.Builder
			doctor.Print(&out, findings)
			t.Logf("cpi doctor for %s:\n%s", uri, out.String())
		})
	}
}

// daemonSocket is the socket of the libvirtd the probes run against.
func daemonSocket(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(daemonURI(t))
	if err != nil {
		t.Fatal(err)
	}
	if sock := u.Query().Get("socket"); sock != "" {
		return sock
	}
	sock, tried := LocalSocket(u)
	if sock == "" {
		t.Fatalf("no socket of %s found (tried %v)", u, tried)
	}
	return sock
}

// A libvirtd without the URI's driver is no outage: the call answers
// NotSupported, not the retryable unreachable.
func TestMissingDriverIsNotUnreachable(t *testing.T) {
	uri := hypervisor.Xen.URI("", "unix") + "?socket=" + url.QueryEscape(daemonSocket(t))
	_, _, err := Connect(context.Background(), config.Config{URI: uri})
	if !errors.Is(err, cpierr.ErrNotSupported) || errors.Is(err, cpierr.ErrUnreachable) || !strings.Contains(err.Error(), "xen:///system") {
		t.Fatalf("Connect(%s) = %v; want NotSupported naming the URI, not unreachable", uri, err)
	}
}
