package config

import (
	"encoding/json"
	"testing"
)

// FuzzParse: any cpi.json is a valid config or an error, never a panic;
// an accepted one validates and survives a round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"agent":{"mbus":"https://mbus:p@0.0.0.0:6868"}}`,
		`{"hypervisor":"qemu","uri":"qemu:///system","store_dir":"/var/store","storage_pool":"bosh","network":"default","reboot_timeout":5,"machine":"pc","hotplug_slots":3,"agent":{"mbus":"https://h","ntp":["a"],"blobstore":{"provider":"dav","options":{"x":1}}}}`,
		`{"agent":{"mbus":"https://h"}} x`,
		`{"network":"a","network":"b","agent":{"mbus":"https://h"}}`,
		`{"reboot_timeout":"soon"}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse(raw)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		again, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(again); err != nil {
			t.Fatalf("an accepted config does not parse again: %v\n%s", err, again)
		}
	})
}
