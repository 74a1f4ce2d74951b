// Package cpiclient runs the CPI executable the way a director does: one
// process per call, one JSON request on stdin, one response on stdout. The
// integration suites, the lifecycle demo and the bench command use it.
package cpiclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// Client calls one CPI binary with one config.
type Client struct {
	Binary     string
	ConfigPath string
	// StemcellAPIVersion goes into context.vm.stemcell.api_version.
	StemcellAPIVersion int
	// As is a command the binary runs under, e.g. setpriv to run it as
	// another user; empty runs it directly.
	As []string
	// Context holds the properties a director's CPI config adds to each
	// call's context (uri, storage_pool, ...): the CPI of one host.
	Context map[string]any
}

// Response is the CPI's answer.
type Response struct {
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
	Log    string          `json:"log"`
}

// Error is the error part of a response.
type Error struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	OkToRetry bool   `json:"ok_to_retry"`
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Run is one process run.
type Run struct {
	Response Response
	Stdout   []byte
	Stderr   string
	ExitCode int
	Took     time.Duration
}

// Request builds a director-style request for method at API version 2.
func (c Client) Request(method string, args ...any) []byte {
	if args == nil {
		args = []any{}
	}
	version := c.StemcellAPIVersion
	if version == 0 {
		version = 2
	}
	context := map[string]any{}
	for k, v := range c.Context {
		context[k] = v
	}
	context["director_uuid"] = "cpiclient"
	context["request_id"] = fmt.Sprintf("cpi-%d", time.Now().UnixNano()%1000000)
	context["vm"] = map[string]any{"stemcell": map[string]any{"api_version": version}}
	req, _ := json.Marshal(map[string]any{
		"method": method, "arguments": args, "api_version": 2, "context": context,
	})
	return req
}

// RunRaw starts the binary with request on stdin. An error means no
// parseable response came back.
func (c Client) RunRaw(request []byte) (Run, error) {
	argv := append(append([]string{}, c.As...), c.Binary, "-configPath", c.ConfigPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(request)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	run := Run{Stdout: stdout.Bytes(), Stderr: stderr.String(), Took: time.Since(start)}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		run.ExitCode = exit.ExitCode()
	} else if err != nil {
		return run, fmt.Errorf("running %s: %w", c.Binary, err)
	}
	if err := json.Unmarshal(run.Stdout, &run.Response); err != nil {
		return run, fmt.Errorf("no JSON response (exit %d): %q; stderr: %s", run.ExitCode, run.Stdout, run.Stderr)
	}
	return run, nil
}

// Call runs method; the error is the CPI's error when it answered one.
func (c Client) Call(method string, args ...any) (json.RawMessage, Run, error) {
	run, err := c.RunRaw(c.Request(method, args...))
	if err != nil {
		return nil, run, err
	}
	if run.Response.Error != nil {
		return nil, run, fmt.Errorf("%s: %w", method, run.Response.Error)
	}
	return run.Response.Result, run, nil
}

// CallString runs a method whose result is a string (a CID).
func (c Client) CallString(method string, args ...any) (string, Run, error) {
	raw, run, err := c.Call(method, args...)
	if err != nil {
		return "", run, err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", run, fmt.Errorf("%s: result %s is not a string", method, raw)
	}
	return s, run, nil
}

// CreateVM runs create_vm (API v2) and returns the VM CID.
func (c Client) CreateVM(agentID, stemcell string, props, networks, env map[string]any, diskCIDs []string) (string, Run, error) {
	if diskCIDs == nil {
		diskCIDs = []string{}
	}
	raw, run, err := c.Call("create_vm", agentID, stemcell, props, networks, diskCIDs, env)
	if err != nil {
		return "", run, err
	}
	var result []json.RawMessage
	var cid string
	if json.Unmarshal(raw, &result) != nil || len(result) != 2 || json.Unmarshal(result[0], &cid) != nil {
		return "", run, fmt.Errorf("create_vm answered %s; want [vm_cid, networks]", raw)
	}
	return cid, run, nil
}
