package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudfoundry/bosh-cpi-go/rpc"
)

// FuzzServe: any request on stdin gets one JSON response with a result or
// a typed error, never a panic. The config names a libvirt socket that
// does not exist, so calls that need the runtime fail fast.
func FuzzServe(f *testing.F) {
	for _, seed := range []string{
		`{"method":"info","arguments":[],"context":{}}`,
		`{"method":"create_disk","arguments":[1024,{},null],"context":{"director_uuid":"d"}}`,
		`{"method":"create_disk","arguments":[17592186044416,{},null],"context":{}}`,
		`{"method":"create_vm","arguments":["a","sc-x",{},{"m":{"type":"manual","ip":"999.1.1.1"}},[],{}],"context":{}}`,
		`{"method":"delete_snapshot","arguments":["snap-11111111-2222-3333-4444-555555555555"],"context":{}}`,
		`{"method":"info","arguments":[],"context":{"reboot_timeout":"soon"}}`,
		`{"method":"info","arguments":[],"context":{"store_dir":"/x"}}`,
		`{"method":"make_coffee"}`, `{"method":`, `[]`, ``,
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	cfgPath := filepath.Join(dir, "cpi.json")
	cfg := `{"hypervisor":"qemu","uri":"qemu+unix:///system?socket=` + filepath.Join(dir, "no-such-socket") +
		`","store_dir":"` + filepath.Join(dir, "store") + `","agent":{"mbus":"https://mbus:p@0.0.0.0:6868"}}`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, request string) {
		out, closeConnections := serve([]byte(request), cfgPath, log)
		closeConnections()
		var resp rpc.Response
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response is not JSON: %s", out)
		}
		if resp.Error != nil && resp.Error.Type == "" {
			t.Fatalf("untyped error: %s", out)
		}
	})
}
