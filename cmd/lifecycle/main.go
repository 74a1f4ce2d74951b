// Command lifecycle runs a full CPI lifecycle against a real libvirtd, the
// way a director drives the CPI: one process per call, JSON on stdin. It
// prints each call, its time and its answer, and checks at the end that
// nothing was left behind. scripts/lifecycle.sh installs and starts what it
// needs and then runs this.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

func main() {
	uri := flag.String("uri", devenv.DefaultURI(), "libvirt URI")
	stemcell := flag.String("stemcell", "build/test-stemcell.tgz", "stemcell tarball (a blank image is used when it does not exist)")
	bootWait := flag.Duration("boot-wait", 90*time.Second, "how long to wait for the test stemcell's agent to report")
	flag.Parse()
	if err := run(*uri, *stemcell, *bootWait); err != nil {
		fmt.Fprintf(os.Stderr, "lifecycle FAILED: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("lifecycle OK: every call answered, nothing left behind")
}

// stepper runs calls and prints each with its time and answer.
type stepper struct{ client cpiclient.Client }

func (s stepper) call(method string, args ...any) (json.RawMessage, error) {
	raw, run, err := s.client.Call(method, args...)
	return raw, show(method, run, string(raw), err)
}

func (s stepper) callString(method string, args ...any) (string, error) {
	out, run, err := s.client.CallString(method, args...)
	return out, show(method, run, fmt.Sprintf("%q", out), err)
}

func (s stepper) createVM(agentID, stemcell string, props, networks map[string]any) (string, error) {
	cid, run, err := s.client.CreateVM(agentID, stemcell, props, networks, map[string]any{}, nil)
	return cid, show("create_vm", run, cid, err)
}

// show prints one call; a failed call's error carries the CPI log.
func show(method string, run cpiclient.Run, summary string, err error) error {
	if len(summary) > 160 {
		summary = summary[:160] + "..."
	}
	if err != nil {
		summary = err.Error()
	}
	fmt.Printf("%-24s %7.3fs  %s\n", method, run.Took.Seconds(), summary)
	if err != nil {
		return fmt.Errorf("%w\nCPI log:\n%s", err, run.Stderr)
	}
	return nil
}

func run(uri, stemcellTarball string, bootWait time.Duration) (err error) {
	env, err := devenv.New(".", uri, "demo")
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
		}
	}()
	// When a step fails, delete what the run made (newest first), as a
	// director's cleanup would, so a failed demo leaves nothing behind.
	var made []func()
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				made[i]()
			}
		}
	}()
	undo := func(method, cid string) { made = append(made, func() { env.Client.Call(method, cid) }) }
	fmt.Printf("libvirt %s, pool %s, network %s (%s.0/24), store_dir %s\n\n", uri, env.Pool, env.Network, env.Subnet, env.StoreDir)
	s := stepper{client: env.Client}

	image, props, booting, err := stemcellImage(env.Root, stemcellTarball)
	if err != nil {
		return err
	}
	if _, err := s.call("info"); err != nil {
		return err
	}
	stemcellCID, err := s.callString("create_stemcell", image, props)
	if err != nil {
		return err
	}
	undo("delete_stemcell", stemcellCID)
	vmCID, err := s.createVM("agent-demo", stemcellCID, map[string]any{"cpus": 1, "memory": 512, "ephemeral_disk": 2048}, env.Networks(10))
	if err != nil {
		return err
	}
	undo("delete_vm", vmCID)
	steps := []func() error{
		func() error { _, err := s.call("has_vm", vmCID); return err },
		func() error {
			_, err := s.call("set_vm_metadata", vmCID, map[string]any{"director": "demo", "deployment": "demo", "job": "zookeeper", "index": "0"})
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if title, err := env.Virsh("list", "--title"); err == nil {
		fmt.Printf("\nvirsh list --title:\n%s\n\n", title)
	}
	diskCID, err := s.callString("create_disk", 1024, map[string]any{}, vmCID)
	if err != nil {
		return err
	}
	// delete_vm runs before delete_disk in the undo order, which releases
	// an attached disk.
	made = append([]func(){func() { env.Client.Call("delete_disk", diskCID) }}, made...)
	for _, c := range []struct {
		method string
		args   []any
	}{
		{"set_disk_metadata", []any{diskCID, map[string]any{"deployment": "demo"}}},
		{"attach_disk", []any{vmCID, diskCID}},
		{"get_disks", []any{vmCID}},
	} {
		if _, err := s.call(c.method, c.args...); err != nil {
			return err
		}
	}
	if booting {
		showGuestReports(env, vmCID, bootWait)
	}
	if _, err := s.call("reboot_vm", vmCID); err != nil {
		return err
	}
	if _, err := s.call("detach_disk", vmCID, diskCID); err != nil {
		return err
	}
	snapshotCID, err := s.callString("snapshot_disk", diskCID, map[string]any{"deployment": "demo"})
	if err != nil {
		return err
	}
	undo("delete_snapshot", snapshotCID)
	for _, c := range []struct {
		method string
		cid    string
	}{{"delete_snapshot", snapshotCID}, {"delete_vm", vmCID}, {"delete_disk", diskCID}, {"delete_stemcell", stemcellCID}} {
		if _, err := s.call(c.method, c.cid); err != nil {
			return err
		}
	}
	if left := env.LeftOver(); len(left) > 0 {
		return fmt.Errorf("left behind: %v", left)
	}
	return nil
}

// stemcellImage unpacks the test stemcell when it was built, else makes a
// blank image (the VM then sits in its BIOS, which is enough for the calls).
func stemcellImage(dir, tarball string) (string, map[string]any, bool, error) {
	if _, err := os.Stat(tarball); err == nil {
		image, manifest, err := devenv.UnpackStemcell(tarball, dir)
		if err != nil {
			return "", nil, false, err
		}
		fmt.Printf("stemcell %s %s from %s\n", manifest.Name, manifest.Version, tarball)
		return image, manifest.CloudProperties, true, nil
	}
	fmt.Printf("no %s (make test-stemcell builds it): using a blank 1 GiB image\n", tarball)
	image, err := devenv.BlankStemcellImage(dir, "1G")
	return image, map[string]any{"infrastructure": "openstack", "hypervisor": "kvm", "disk_format": "qcow2"}, false, err
}

// showGuestReports prints what the test stemcell's agent wrote to the
// serial console: proof that the guest read its settings and found its
// disk.
func showGuestReports(env *devenv.Env, vmCID string, wait time.Duration) {
	// Printed whether or not the disk report came: a partial list is what
	// a reader needs when it did not.
	env.WaitForReport(vmCID, 0, wait, "disk report", func(r guestcheck.Report) bool { return r.Event == guestcheck.EventDisk })
	fmt.Printf("\nguest reports from %s:\n", env.ConsoleLogPath(vmCID))
	for _, line := range strings.Split(env.ConsoleLog(vmCID), "\n") {
		if i := strings.Index(line, guestcheck.ReportPrefix); i >= 0 {
			fmt.Println("  " + strings.TrimSpace(line[i:]))
		}
	}
	fmt.Println()
}
