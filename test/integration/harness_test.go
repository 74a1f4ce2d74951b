// Package integration drives the built CPI binary with JSON on stdin, as a
// director does, against a real libvirtd and QEMU. It checks what it can
// through virsh, a second client that shares no code with the CPI.
package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

var suite *devenv.Env

func TestMain(m *testing.M) {
	uri, run, err := devenv.SuiteURI("integration suite")
	if !run {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if suite, err = devenv.New("../..", uri, "it"); err != nil {
		fmt.Fprintf(os.Stderr, "integration setup failed: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if testStemcell.dir != "" {
		os.RemoveAll(testStemcell.dir)
	}
	if err := suite.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "integration teardown: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// checkRun asserts what every call must do: answer JSON on stdout, and
// never print a secret or a stack trace.
func checkRun(t *testing.T, run cpiclient.Run, err error) cpiclient.Run {
	t.Helper()
	if err != nil && run.Stdout == nil {
		t.Fatalf("%v", err)
	}
	var probe map[string]json.RawMessage
	if jsonErr := json.Unmarshal(run.Stdout, &probe); jsonErr != nil {
		t.Fatalf("CPI wrote no JSON response (exit %d): %q\nstderr:\n%s", run.ExitCode, run.Stdout, run.Stderr)
	}
	for _, secret := range []string{devenv.MbusPassword, devenv.BlobstorePassword} {
		if strings.Contains(run.Stderr, secret) {
			t.Fatalf("CPI log contains a secret:\n%s", run.Stderr)
		}
	}
	if strings.Contains(run.Stderr, "goroutine ") || strings.Contains(string(run.Stdout), "goroutine ") {
		t.Fatalf("CPI printed a stack trace:\n%s", run.Stderr)
	}
	if run.ExitCode != 0 {
		t.Fatalf("CPI exited %d after answering; want 0\nstderr:\n%s", run.ExitCode, run.Stderr)
	}
	return run
}

// rawCall runs the binary once with request on stdin.
func rawCall(t *testing.T, request []byte) cpiclient.Run {
	t.Helper()
	run, err := suite.Client.RunRaw(request)
	return checkRun(t, run, err)
}

// call runs method at API version 2 (stemcell API 2).
func call(t *testing.T, method string, args ...any) cpiclient.Run {
	t.Helper()
	return rawCall(t, suite.Client.Request(method, args...))
}

// mustCall fails the test when the CPI answers an error.
func mustCall(t *testing.T, method string, args ...any) json.RawMessage {
	t.Helper()
	run := call(t, method, args...)
	if e := run.Response.Error; e != nil {
		t.Fatalf("%s failed: %s: %s\nstderr:\n%s", method, e.Type, e.Message, run.Stderr)
	}
	return run.Response.Result
}

// wantError asserts the CPI answered the given Bosh::Clouds type.
func wantError(t *testing.T, run cpiclient.Run, kind string) {
	t.Helper()
	e := run.Response.Error
	if e == nil {
		t.Fatalf("want %s, got result %s", kind, run.Response.Result)
	}
	if e.Type != "Bosh::Clouds::"+kind {
		t.Fatalf("want %s, got %s: %s", kind, e.Type, e.Message)
	}
}

func resultString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("result %s is not a string", raw)
	}
	return s
}

func virsh(args ...string) (string, error) { return suite.Virsh(args...) }

func mustVirsh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := suite.Virsh(args...)
	if err != nil {
		t.Fatalf("virsh %v: %v: %s", args, err, out)
	}
	return out
}

// assertNothingLeft checks libvirt and store_dir hold nothing of the test
// but volumes named with a keep prefix (e.g. other tests' stemcells).
func assertNothingLeft(t *testing.T, keep ...string) {
	t.Helper()
	for _, left := range suite.LeftOver(keep...) {
		t.Errorf("left behind: %s", left)
	}
}

// newCmd is the binary with another config and a request on stdin.
func newCmd(configPath, request string) *exec.Cmd {
	cmd := exec.Command(suite.Client.Binary, "-configPath", configPath)
	cmd.Stdin = strings.NewReader(request)
	return cmd
}
