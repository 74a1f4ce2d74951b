package vm

import (
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
)

// FuzzParseProps: any VM cloud_properties are accepted within bounds or
// refused, never a panic or a size that overflows on its way to libvirt.
func FuzzParseProps(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"cpus":2,"memory":2048,"ephemeral_disk":4096}`, `{"cpu":2,"ram":1024,"disk":3000}`,
		`{"cpus":2,"cpu":3}`, `{"ephemeral_disk":17592186044416}`, `{"memory":-1}`, `{"cpus":"two"}`,
		`{"memroy":1}`, `null`, `[1]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := ParseProps(rawSource(raw))
		if err != nil {
			return
		}
		if p.CPUs <= 0 || p.CPUs > MaxCPUs || p.MemoryMiB <= 0 || p.MemoryMiB > MaxMemoryMiB ||
			p.EphemeralDiskMiB <= 0 || p.EphemeralDiskMiB > disk.MaxSizeMiB {
			t.Fatalf("%s accepted as %+v, outside the bounds", raw, p)
		}
	})
}
