package docker

// Logic without a daemon.

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
)

func TestPlanNICs(t *testing.T) {
	cases := []struct {
		name    string
		api     string
		nics    []nicSpec
		macs    map[string]string // settings MACs in
		order   []string          // BOSH networks, first = container's network
		wantMAC map[string]string // "" = any generated
		err     error
	}{
		{"one dynamic keeps its MAC", "1.41", []nicSpec{{BOSHNetwork: "a"}},
			map[string]string{"a": "52:54:00:01:02:03"}, []string{"a"}, map[string]string{"a": "52:54:00:01:02:03"}, nil},
		{"old API: dynamic first, static MAC from its IP", "1.41",
			[]nicSpec{{BOSHNetwork: "m", IP: "10.0.0.5"}, {BOSHNetwork: "d"}},
			map[string]string{"m": "52:54:00:00:00:01", "d": "52:54:00:00:00:02"}, []string{"d", "m"},
			map[string]string{"d": "52:54:00:00:00:02", "m": "02:42:0a:00:00:05"}, nil},
		{"new API: every NIC keeps its MAC and order", "1.44",
			[]nicSpec{{BOSHNetwork: "m", IP: "10.0.0.5"}, {BOSHNetwork: "d"}},
			map[string]string{"m": "52:54:00:00:00:01", "d": "52:54:00:00:00:02"}, []string{"d", "m"},
			map[string]string{"d": "52:54:00:00:00:02", "m": "52:54:00:00:00:01"}, nil},
		{"no MAC in the settings: one is made", "1.41", []nicSpec{{BOSHNetwork: "a"}},
			map[string]string{"a": ""}, []string{"a"}, map[string]string{"a": ""}, nil},
		{"old API: two dynamic networks", "1.41", []nicSpec{{BOSHNetwork: "a"}, {BOSHNetwork: "b"}},
			map[string]string{"a": "", "b": ""}, nil, nil, cpierr.ErrNotSupported},
		{"network missing from the settings", "1.41", []nicSpec{{BOSHNetwork: "x"}}, map[string]string{}, nil, nil, nil},
		{"no NIC", "1.41", nil, map[string]string{}, nil, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Runtime{cfg: Config{}.withDefaults(), apiVer: c.api, log: testLogger(t)}
			s := settingsFor("vm-00000000-0000-0000-0000-000000000000")
			for k, mac := range c.macs {
				s.Networks[k] = withMAC(s.Networks[k], mac)
			}
			plan, out, err := r.planNICs(containerSpec{NICs: c.nics}, s)
			if c.order == nil {
				if err == nil || (c.err != nil && !errors.Is(err, c.err)) {
					t.Fatalf("want error %v, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range plan {
				if p.bosh != c.order[i] {
					t.Errorf("NIC %d is %s, want %s", i, p.bosh, c.order[i])
				}
				if p.network != DefaultNetwork {
					t.Errorf("NIC %s on %s, want the default network", p.bosh, p.network)
				}
				if w := c.wantMAC[p.bosh]; (w != "" && p.mac != w) || p.mac == "" || out.Networks[p.bosh].MAC != p.mac {
					t.Errorf("NIC %s: MAC %s, settings %s, want %q", p.bosh, p.mac, out.Networks[p.bosh].MAC, w)
				}
			}
			if s.Networks[c.order[0]].MAC != c.macs[c.order[0]] {
				t.Error("planNICs changed the caller's settings")
			}
		})
	}
}

func TestTLSConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		tls  TLS
		want string
	}{
		{"CA that is no PEM", TLS{CACert: "nope"}, "no PEM certificate"},
		{"cert without key", TLS{ClientCert: "x"}, "go together"},
		{"cert and key that are no pair", TLS{ClientCert: "x", ClientKey: "secret-key-bytes"}, "not a matching PEM pair"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tlsConfig(c.tls)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret-key-bytes") {
				t.Errorf("want an error with %q and no key bytes, got %v", c.want, err)
			}
		})
	}
}

func TestSettingsTar(t *testing.T) {
	for _, c := range []struct {
		base string
		want []string
	}{
		{"/var/vcap/bosh", []string{"warden-cpi-agent-env.json"}},
		{"/var", []string{"vcap/", "vcap/bosh/", "vcap/bosh/warden-cpi-agent-env.json"}},
		{"/", []string{"var/", "var/vcap/", "var/vcap/bosh/", "var/vcap/bosh/warden-cpi-agent-env.json"}},
	} {
		buf, err := settingsTar(c.base, SettingsPath, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		tr := tar.NewReader(buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
			if h.Typeflag == tar.TypeReg && h.Mode != 0o600 {
				t.Errorf("settings file mode %o", h.Mode)
			}
		}
		if strings.Join(names, ",") != strings.Join(c.want, ",") {
			t.Errorf("base %s: %v, want %v", c.base, names, c.want)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a/b`: "/a/b", `/a\040b`: "/a b", `/x\134y`: `/x\y`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
