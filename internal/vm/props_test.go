package vm

import (
	"encoding/json"
	"strings"
	"testing"
)

type rawSource string

func (r rawSource) As(v any) error { return json.Unmarshal([]byte(r), v) }

// testKey is an ed25519 public key made for this test.
const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAl3FdIuVNEUjxao2A8YOXBw7BbWAKYjbSthSL7meEuI op@lab"

func TestParseProps(t *testing.T) {
	cases := []struct {
		in      string
		want    Props
		wantErr string
	}{
		{`{}`, Props{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB}, ""},
		{`{"cpus":4,"memory":8192,"ephemeral_disk":20480}`, Props{CPUs: 4, MemoryMiB: 8192, EphemeralDiskMiB: 20480}, ""},
		{`{"cpu":2,"ram":1024,"disk":3000}`, Props{CPUs: 2, MemoryMiB: 1024, EphemeralDiskMiB: 3000}, ""},
		{`{"cpus":2,"cpu":2}`, Props{CPUs: 2, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB}, ""},
		{`{"cpus":2,"cpu":3}`, Props{}, "disagree"},
		{`{"memory":0}`, Props{}, "memory"},
		{`{"cpus":"two"}`, Props{}, "cpus"},
		{`{"instance_type":"m1.small"}`, Props{}, "instance_type"},
		{`{"ssh_public_key":"` + testKey + `"}`, Props{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB, SSHPublicKey: testKey}, ""},
		{`{"ssh_public_key":"ssh-rsa not-base64"}`, Props{}, "ssh_public_key"},
		{`{"ephemeral_disk":17592186044416}`, Props{}, "more than"},
		{`{"memory":9223372036854775807}`, Props{}, "more than"},
		{`{"cpus":100000}`, Props{}, "more than"},
		{`{"firmware":"efi"}`, Props{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB, Firmware: FirmwareEFI}, ""},
		{`{"firmware":"bios"}`, Props{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB, Firmware: FirmwareBIOS}, ""},
		{`{"firmware":"uefi"}`, Props{}, "'firmware' must be 'efi' or 'bios'"},
		{`{"firmware":1}`, Props{}, "firmware"},
		{`{"container":{"init":"systemd","privileged":true}}`, Props{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB, Container: ContainerProps{Init: InitSystemd, Privileged: true}}, ""},
		{`{"container":{"init":"plain"}}`, Props{CPUs: DefaultCPUs, MemoryMiB: DefaultMemoryMiB, EphemeralDiskMiB: DefaultEphemeralDiskMiB, Container: ContainerProps{Init: InitPlain}}, ""},
		{`{"container":{"init":"upstart"}}`, Props{}, "container.init"},
		{`{"container":{"inti":"systemd"}}`, Props{}, "inti"},
	}
	for _, tc := range cases {
		got, err := ParseProps(rawSource(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseProps(%s) = %v; want error with %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseProps(%s) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestValidCID(t *testing.T) {
	if !ValidCID(NewCID()) {
		t.Fatal("a fresh CID is not valid")
	}
	for _, bad := range []string{"", "vm-", "../../etc/passwd", "vm-123", "instance-00000001", NewCID() + "/x"} {
		if ValidCID(bad) {
			t.Errorf("ValidCID(%q) = true", bad)
		}
	}
}
