package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudfoundry/bosh-cpi-go/rpc"
)

// infoFor answers info for a cpi.json with the given uri.
func infoFor(t *testing.T, uri string) rpc.Response {
	return infoForKeys(t, `"uri":"`+uri+`"`)
}

// infoForKeys answers info for a cpi.json with the given extra keys.
func infoForKeys(t *testing.T, keys string) rpc.Response {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "cpi.json")
	cfg := `{` + keys + `,"store_dir":"` + dir + `","agent":{"mbus":"https://mbus:p@0.0.0.0:6868"}}`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, closeConnections := serve([]byte(`{"method":"info","arguments":[],"context":{}}`), cfgPath, slog.New(slog.NewTextHandler(io.Discard, nil)))
	closeConnections()
	var resp rpc.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response is not JSON: %s", out)
	}
	return resp
}

// TestInfoOffersTheHypervisorsStemcells: info answers from the profile the
// URI's driver selects, without a connection (no daemon listens here).
func TestInfoOffersTheHypervisorsStemcells(t *testing.T) {
	cases := []struct {
		uri     string
		formats []string
	}{
		{"qemu+tcp://192.0.2.1/system", []string{"openstack-qcow2", "openstack-raw", "vsphere-ovf", "general-ovf"}},
		{"lxc:///system", []string{"warden-tar", "general-tar"}},
		{"lxc+ssh://root@192.0.2.1/system", []string{"warden-tar", "general-tar"}},
		{"vbox:///session", []string{"vsphere-ovf", "general-ovf"}},
		{"vbox+ssh://user@192.0.2.1/session", []string{"vsphere-ovf", "general-ovf"}},
		{"xen:///system", []string{"openstack-qcow2", "openstack-raw"}},
		{"xen+tls://192.0.2.1/system", []string{"openstack-qcow2", "openstack-raw"}},
		{"vmwarews:///session", []string{"vsphere-ovf", "general-ovf"}},
	}
	for _, c := range cases {
		resp := infoFor(t, c.uri)
		raw, _ := json.Marshal(resp.Result)
		var info struct {
			StemcellFormats []string `json:"stemcell_formats"`
		}
		json.Unmarshal(raw, &info)
		if resp.Error != nil || !slices.Equal(info.StemcellFormats, c.formats) {
			t.Errorf("info for %s = %s, %+v; want formats %v", c.uri, raw, resp.Error, c.formats)
		}
	}
}

// TestInfoOffersDockersStemcells: runtime docker offers warden stemcells
// without connecting (nothing listens at that address).
func TestInfoOffersDockersStemcells(t *testing.T) {
	resp := infoForKeys(t, `"runtime":"docker","docker":{"host":"tcp://192.0.2.1:2376"}`)
	raw, _ := json.Marshal(resp.Result)
	var info struct {
		StemcellFormats []string `json:"stemcell_formats"`
	}
	json.Unmarshal(raw, &info)
	if resp.Error != nil || !slices.Equal(info.StemcellFormats, []string{"warden-tar", "general-tar"}) {
		t.Fatalf("info = %s, %+v", raw, resp.Error)
	}
}

// TestDriversWithoutAProfileAreRefused: bhyve and esx have no profile, so
// even info is a CpiError naming the driver; esx says why it cannot have one.
func TestDriversWithoutAProfileAreRefused(t *testing.T) {
	for _, uri := range []string{"bhyve:///system", "esx://192.0.2.1/"} {
		resp := infoFor(t, uri)
		driver, _, _ := strings.Cut(uri, ":")
		if resp.Error == nil || resp.Error.Type != "Bosh::Clouds::CpiError" || !strings.Contains(resp.Error.Message, "driver '"+driver+"'") {
			t.Errorf("info for %s = %+v; want a CpiError naming driver %s", uri, resp.Error, driver)
		}
	}
}
