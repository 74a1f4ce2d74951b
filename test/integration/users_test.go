package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
)

// An operator runs `bosh create-env` as themselves: the CPI must work for a
// user in group libvirt against the system daemon (the one the test command
// starts admits that group through its socket), and for a plain user
// against their own qemu:///session daemon. Each test boots the test
// stemcell as that user and reads the guest's report.

func TestNonRootUserInLibvirtGroupOnSystemDaemon(t *testing.T) {
	u := osUser(t, "boshcpi-grp", "libvirt")
	pool := fmt.Sprintf("cpi-usergrp-%d", os.Getpid())
	client := userClient(t, u, map[string]any{"uri": suite.URI, "storage_pool": pool, "network": suite.Network})
	t.Cleanup(func() { removePool(t, suite.URI, pool) })

	doctor := doctorAs(t, u, client.ConfigPath)
	if !strings.Contains(doctor, "[ok  ] libvirtd: reachable at") {
		t.Fatalf("doctor as %s does not reach libvirtd:\n%s", u.Username, doctor)
	}
	vm := bootAs(t, client, suite.Networks(60))
	console := filepath.Join("/var/log/libvirt/qemu", vm+"-console.log")
	waitForSettingsIn(t, console, vm)
	checkUserCall(t, client, "delete_vm", vm)

	home := u.HomeDir
	if _, err := os.Stat(filepath.Join(home, ".local/state/bosh-libvirt-cpi/locks")); err != nil {
		t.Errorf("the default store_dir for %s is not under its home: %v", u.Username, err)
	}
	if _, err := os.Stat(filepath.Join("/var/lib/libvirt/images", pool)); err != nil {
		t.Errorf("the pool was not built by libvirtd at the default pool_path: %v", err)
	}
}

func TestUserNotInLibvirtGroupIsToldWhy(t *testing.T) {
	u := osUser(t, "boshcpi-out")
	client := userClient(t, u, map[string]any{"uri": suite.URI})
	out := doctorAs(t, u, client.ConfigPath)
	if !strings.Contains(out, "[FAIL] libvirtd") || !strings.Contains(out, "group") {
		t.Fatalf("doctor for a user outside group libvirt should fail on libvirtd and name the group:\n%s", out)
	}
	run, err := client.RunRaw(client.Request("has_vm", "vm-00000000-0000-0000-0000-000000000000"))
	if err != nil || run.Response.Error == nil || !strings.Contains(run.Response.Error.Message, "group") {
		t.Fatalf("has_vm as %s: want an error naming the group; got %+v (%v)", u.Username, run.Response.Error, err)
	}
}

func TestPlainUserOnSessionDaemonWithUserModeNetwork(t *testing.T) {
	u := osUser(t, "boshcpi-ses")
	client := userClient(t, u, map[string]any{"uri": "qemu:///session"})
	t.Cleanup(func() {
		for _, args := range [][]string{{"pool-destroy", "bosh"}, {"pool-undefine", "bosh"}} {
			exec.Command("setpriv", append(asUser(u), append([]string{"virsh", "-c", "qemu:///session"}, args...)...)...).Run()
		}
		// The session daemon and the virtlogd it started, which would
		// otherwise linger for their idle timeout.
		exec.Command("pkill", "-u", u.Username, "-x", "libvirtd").Run()
		exec.Command("pkill", "-u", u.Username, "-x", "virtlogd").Run()
	})
	store := filepath.Join(u.HomeDir, ".local/state/bosh-libvirt-cpi")

	networks := map[string]any{"laptop": map[string]any{
		"type": "manual", "ip": "10.0.2.15", "netmask": "255.255.255.0", "gateway": "10.0.2.2",
		"dns": []string{"10.0.2.3"}, "default": []string{"dns", "gateway"},
		"cloud_properties": map[string]any{"mode": "user"},
	}}
	vm := bootAs(t, client, networks)
	waitForSettingsIn(t, filepath.Join(store, "console", vm+".log"), vm)
	checkUserCall(t, client, "delete_vm", vm)
	if out, err := exec.Command("setpriv", append(asUser(u), "virsh", "-c", "qemu:///session", "list", "--all", "--name")...).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("session daemon still lists domains after delete_vm: %s (%v)", out, err)
	}
	if _, err := os.Stat(filepath.Join(store, "pool")); err != nil {
		t.Errorf("a session pool belongs under store_dir: %v", err)
	}
}

// osUser returns a local user (made if missing) with a home, in groups.
func osUser(t *testing.T, name string, groups ...string) *user.User {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		args := []string{"-m", "-s", "/bin/sh"}
		if len(groups) > 0 {
			args = append(args, "-G", strings.Join(groups, ","))
		}
		if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
	}
	if len(groups) > 0 { // a user kept from an earlier run may have lost a group
		if out, err := exec.Command("usermod", "-aG", strings.Join(groups, ","), name).CombinedOutput(); err != nil {
			t.Fatalf("usermod %s: %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	// Each run starts from the defaults, as a new operator would.
	os.RemoveAll(filepath.Join(u.HomeDir, ".local/state/bosh-libvirt-cpi"))
	return u
}

func asUser(u *user.User) []string {
	return []string{"--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--reset-env"}
}

// userClient is the suite's binary run as u with a cpi.json of overrides
// on top of the suite's agent settings; store_dir and pool_path are left
// to their defaults for that user.
func userClient(t *testing.T, u *user.User, overrides map[string]any) cpiclient.Client {
	t.Helper()
	cfg := map[string]any{"hypervisor": "auto", "reboot_timeout": 10,
		"agent": map[string]any{"mbus": "https://mbus:" + devenv.MbusPassword + "@0.0.0.0:6868"}}
	for k, v := range overrides {
		cfg[k] = v
	}
	dir := readableTempDir(t)
	path := filepath.Join(dir, "cpi.json")
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return cpiclient.Client{Binary: suite.Client.Binary, ConfigPath: path, As: append([]string{"setpriv"}, asUser(u)...)}
}

func readableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "it-user-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func doctorAs(t *testing.T, u *user.User, configPath string) string {
	t.Helper()
	out, _ := exec.Command("setpriv", append(asUser(u), suite.Client.Binary, "doctor", "-configPath", configPath)...).CombinedOutput()
	return string(out)
}

func checkUserCall(t *testing.T, c cpiclient.Client, method string, args ...any) json.RawMessage {
	t.Helper()
	raw, run, err := c.Call(method, args...)
	checkRun(t, run, nil)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, run.Stderr)
	}
	return raw
}

// bootAs imports the test stemcell and creates a VM from it as the
// client's user; both are removed when the test ends.
func bootAs(t *testing.T, c cpiclient.Client, networks map[string]any) string {
	t.Helper()
	dir := readableTempDir(t)
	image, props, err := devenv.UnpackTestStemcell(filepath.Join("..", ".."), dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(image, 0o644)
	var stemcell string
	json.Unmarshal(checkUserCall(t, c, "create_stemcell", image, props), &stemcell)
	t.Cleanup(func() { c.Call("delete_stemcell", stemcell) })
	vm, run, err := c.CreateVM("agent-"+t.Name(), stemcell, map[string]any{"cpus": 1, "memory": 384, "ephemeral_disk": 512},
		networks, map[string]any{}, nil)
	checkRun(t, run, nil)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, run.Stderr)
	}
	t.Cleanup(func() { c.Call("delete_vm", vm) })
	if !strings.Contains(run.Stderr, "domain type decided") {
		t.Errorf("create_vm did not log its domain type decision:\n%s", run.Stderr)
	}
	return vm
}

// waitForSettingsIn waits for the test agent's settings report in a console log.
func waitForSettingsIn(t *testing.T, console, vm string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		raw, _ := os.ReadFile(console)
		for _, r := range guestcheck.ParseReports(string(raw)) {
			if r.Event == guestcheck.EventSettings {
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	raw, _ := os.ReadFile(console)
	t.Fatalf("VM %s: no settings report in %s within 3m:\n%s", vm, console, raw)
}

// removePool removes a pool the CPI built for a test, and its directory.
func removePool(t *testing.T, uri, pool string) {
	virshAt := func(args ...string) { exec.Command("virsh", append([]string{"-c", uri}, args...)...).Run() }
	virshAt("pool-destroy", pool)
	virshAt("pool-delete", pool)
	virshAt("pool-undefine", pool)
}
