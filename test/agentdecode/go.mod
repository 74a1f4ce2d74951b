// Test-only module: decodes the CPI's agent settings with bosh-agent's own
// types, so the CPI's go.mod never depends on bosh-agent.
module github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/test/agentdecode

go 1.26.8

require (
	github.com/bosh-libvirt-cpi/bosh-libvirt-cpi v0.0.0
	github.com/cloudfoundry/bosh-agent/v2 v2.759.0
	github.com/cloudfoundry/bosh-cpi-go v0.0.0-20230608150715-1e134ab6c93b
)

require (
	code.cloudfoundry.org/clock v1.42.0 // indirect
	github.com/bmatcuk/doublestar v1.3.4 // indirect
	github.com/cloudfoundry/bosh-utils v0.0.642 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jpillora/backoff v1.0.0 // indirect
	github.com/kdomanski/iso9660 v0.4.0 // indirect
	github.com/klauspost/compress v1.18.0 // indirect
	golang.org/x/crypto v0.55.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/bosh-libvirt-cpi/bosh-libvirt-cpi => ../..

// bosh-agent's Windows-only inet.af/wf is not served by the module proxy;
// `go mod tidy` (which walks the tests of dependencies too) needs it found.
replace inet.af/wf => ./wfstub
