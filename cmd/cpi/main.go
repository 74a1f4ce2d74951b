// Command cpi is the BOSH CPI for libvirt. A director (or bosh create-env)
// runs it once per call: `cpi -configPath cpi.json`, one JSON request on
// stdin, one JSON response on stdout, logs on stderr, exit 0 once answered.
// `cpi doctor -configPath cpi.json` checks a host instead.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/cloudfoundry/bosh-cpi-go/apiv1"
	"github.com/cloudfoundry/bosh-cpi-go/rpc"
	boshlog "github.com/cloudfoundry/bosh-utils/logger"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpi"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/logging"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "doctor" {
		return runDoctor(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "keygen" {
		return runKeygen(args[1:], stdout, stderr)
	}
	flags := flag.NewFlagSet("cpi", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("configPath", "", "path to cpi.json")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	log := logging.New(stderr)
	request, err := io.ReadAll(stdin)
	if err != nil {
		log.Error("reading the request from stdin", "error", err)
		return 1
	}
	response, closeConnections := serve(request, *configPath, log)
	defer closeConnections()
	if _, err := stdout.Write(response); err != nil {
		log.Error("writing the response to stdout", "error", err)
		return 1
	}
	return 0
}

// requestHead is what we read of a request before dispatching, for logs.
type requestHead struct {
	Method  string `json:"method"`
	Context struct {
		RequestID string `json:"request_id"`
	} `json:"context"`
}

// serve answers one request; it never panics and always returns a response.
// The runtime's connections stay open until closeConnections: the caller
// writes the response first, so that a call killed after its work is done
// has most likely answered (closing libvirt's connection is a round trip).
func serve(request []byte, configPath string, log *slog.Logger) (response []byte, closeConnections func()) {
	closeConnections = func() {}
	var head requestHead
	_ = json.Unmarshal(request, &head)
	log = log.With("method", head.Method, "request_id", head.Context.RequestID)
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			log.Error("internal error", "panic", fmt.Sprint(r))
			log.Debug("internal error stack", "stack", string(debug.Stack()))
			response = errorResponse(cpierr.TypeCpiError, fmt.Sprintf("internal error in '%s': %v", head.Method, r))
		}
	}()

	if configPath == "" {
		return errorResponse(cpierr.TypeCpiError, "no config: run as 'cpi -configPath /path/to/cpi.json'"), closeConnections
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		log.Error("invalid config", "error", err)
		return errorResponse(cpierr.TypeCpiError, err.Error()), closeConnections
	}
	factory := cpi.NewFactory(cfg, log, runtimeSelector(log))
	closeConnections = func() { factory.Close() }

	// bosh-cpi-go's dispatcher logs whole requests at debug level, and they
	// hold secrets (env carries the agent's mbus certificate): keep it quiet.
	quiet := boshlog.NewWriterLogger(boshlog.LevelError, io.Discard)
	dispatcher := rpc.NewJSONDispatcher(actionFactory{inner: apiv1.NewActionFactory(factory), cpis: factory}, rpc.NewJSONCaller(), quiet)
	response = dispatcher.Dispatch(request)
	logOutcome(log, response, time.Since(start))
	return response, closeConnections
}

func logOutcome(log *slog.Logger, response []byte, took time.Duration) {
	var resp rpc.Response
	if err := json.Unmarshal(response, &resp); err == nil && resp.Error != nil {
		log.Error("call failed", "type", resp.Error.Type, "error", resp.Error.Message, "ok_to_retry", resp.Error.CanRetry, "seconds", took.Seconds())
		return
	}
	log.Info("call done", "seconds", took.Seconds())
}

func errorResponse(kind, message string) []byte {
	out, _ := json.Marshal(rpc.Response{Error: &rpc.ResponseError{Type: kind, Message: message}})
	return out
}

// actionFactory adds update_disk, create_network and delete_network, which
// bosh-cpi-go's factory does not route, and hands every other method to it.
type actionFactory struct {
	inner rpc.ActionFactory
	cpis  apiv1.CPIFactory
}

// networkCPI is the CPI's create_network/delete_network.
type networkCPI interface {
	CreateNetwork(network.Definition) (string, network.Addresses, map[string]any, error)
	DeleteNetwork(string) error
}

func (f actionFactory) Create(method string, apiVersion int, ctx apiv1.CallContext) (interface{}, error) {
	c, err := f.cpis.New(ctx)
	if err != nil {
		// An error here would reach the director as NotImplemented; an
		// action that answers it keeps its own type (a CpiError naming the
		// context key that is wrong).
		return func(...interface{}) (interface{}, error) { return nil, err }, nil
	}
	switch method {
	case "update_disk":
		updater, ok := c.(interface {
			UpdateDisk(apiv1.DiskCID, int, apiv1.DiskCloudProps) (apiv1.DiskCID, error)
		})
		if !ok {
			return nil, fmt.Errorf("update_disk is not available")
		}
		return func(cid apiv1.DiskCID, size int, props apiv1.CloudPropsImpl) (apiv1.DiskCID, error) {
			return updater.UpdateDisk(cid, size, props)
		}, nil
	case "create_network", "delete_network":
		nets, ok := c.(networkCPI)
		if !ok {
			return nil, fmt.Errorf("%s is not available", method)
		}
		if method == "delete_network" {
			return func(cid string) (interface{}, error) { return nil, nets.DeleteNetwork(cid) }, nil
		}
		// The director reads the result as [cid, address properties, cloud_properties].
		return func(def network.Definition) ([]any, error) {
			cid, addrs, props, err := nets.CreateNetwork(def)
			if err != nil {
				return nil, err
			}
			return []any{cid, addrs, props}, nil
		}, nil
	}
	return f.inner.Create(method, apiVersion, ctx)
}
