package logging

import (
	"bytes"
	"errors"
	"fmt"
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
		"no url here":                                 "no url here",
		"https://host:6868/agent":                     "https://host:6868/agent",
		"at https://u:p@h:1 done":                     "at https://u:" + Redacted + "@h:1 done",
		"qemu+tcp://user@host/system":                 "qemu+tcp://user@host/system",
		"'https://a:b@c' quoted":                      "'https://a:" + Redacted + "@c' quoted",
		"dial https://u:p@h:6868: connection refused": "dial https://u:" + Redacted + "@h:6868: connection refused",
		"https://u:p@ss@h:1/x":                        "https://u:" + Redacted + "@h:1/x",
		"a  https://u:p@h\tb":                         "a  https://u:" + Redacted + "@h\tb",
		"two http://a:1@h and s3://k:2@b":             "two http://a:" + Redacted + "@h and s3://k:" + Redacted + "@b",
	}
	for in, want := range cases {
		if got := MaskURLPassword(in); got != want {
			t.Errorf("MaskURLPassword(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestSecretsInValuesNeverReachTheLog: values logged as they are (an
// error, a map of blobstore options, a struct) are masked like strings:
// slog writes an error's text and a map's JSON without asking ReplaceAttr
// about what is inside.
func TestSecretsInValuesNeverReachTheLog(t *testing.T) {
	type options struct {
		Endpoint string `json:"endpoint"`
		Password string `json:"password"`
		Nested   map[string]any
	}
	var buf bytes.Buffer
	log := New(&buf)
	log.Warn("dial failed", "error", fmt.Errorf("connecting: %w", errors.New("dial https://mbus:hunter2@10.0.0.6:6868: refused")))
	log.Info("blobstore", "options", map[string]any{"endpoint": "http://a:hunter2@b", "secret_access_key": "hunter2", "bucket": "kept-bucket"})
	log.Info("struct", "value", options{Endpoint: "x", Password: "hunter2", Nested: map[string]any{"list": []any{"https://u:hunter2@h", map[string]any{"token": "hunter2"}}}})
	log.Info("bytes", "raw", []string{"kept", "ftp://u:hunter2@h/"})
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Fatalf("log contains a secret:\n%s", out)
	}
	for _, want := range []string{"dial https://mbus:", "refused", "kept-bucket", `"endpoint":"x"`, `"kept"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lost %q:\n%s", want, out)
		}
	}
}
