package logging

import (
	"bytes"
	"strings"
	"testing"
)

func TestSecretsNeverReachTheLog(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf)
	log.Info("call", "mbus", "https://mbus:hunter2@0.0.0.0:6868",
		"blobstore_password", "hunter2", "private_key", "-----BEGIN hunter2",
		"error", "dialing https://user:hunter2@10.0.0.6:25250 failed", "vm_cid", "vm-1")
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Fatalf("log contains a secret:\n%s", out)
	}
	if !strings.Contains(out, `"vm_cid":"vm-1"`) {
		t.Fatalf("log lost an ordinary field:\n%s", out)
	}
}

func TestMaskURLPassword(t *testing.T) {
	cases := map[string]string{
		"no url here":                 "no url here",
		"https://host:6868/agent":     "https://host:6868/agent",
		"at https://u:p@h:1 done":     "at https://u:" + Redacted + "@h:1 done",
		"qemu+tcp://user@host/system": "qemu+tcp://user@host/system",
		"'https://a:b@c' quoted":      "'https://a:" + Redacted + "@c' quoted",
	}
	for in, want := range cases {
		if got := MaskURLPassword(in); got != want {
			t.Errorf("MaskURLPassword(%q) = %q; want %q", in, got, want)
		}
	}
}
