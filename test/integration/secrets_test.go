package integration

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
)

// Secrets planted where a director and an operator put them: each is a
// string that appears nowhere else, so finding it in a log is a leak.
var planted = map[string]string{
	"mbus password (cpi.json agent.mbus URL)":                     "plantedMbusPw4b1e",
	"agent blobstore password (cpi.json agent.blobstore.options)": "plantedAgentBlobPw93c0",
	"agent blobstore secret key (cpi.json)":                       "plantedAgentBlobKey77aa",
	"env.bosh.password":                                           "$6$plantedSalt$plantedEnvPwHash0d41",
	"env.bosh.blobstores secret_access_key":                       "plantedEnvS3Secret5f2d",
	"env.bosh.blobstores password":                                "plantedEnvDavPw1e9b",
	"env.bosh.mbus private_key":                                   "plantedPrivateKeyBody8c3f",
	"registry password (cpi.json, refused)":                       "plantedRegistryPw6a7d",
	"registry URL password (cpi.json, refused)":                   "plantedRegistryUrlPw2b5c",
}

const privateKey = "-----BEGIN RSA PRIVATE KEY-----\nMIIEplantedPrivateKeyBody8c3fAAAA\n-----END RSA PRIVATE KEY-----\n"

// secretConfig is a cpi.json of the suite's environment whose agent block
// carries the planted credentials; extra keys are added as they are.
func secretConfig(t *testing.T, extra map[string]any) cpiclient.Client {
	t.Helper()
	overrides := map[string]any{
		"agent": map[string]any{
			"mbus": "https://mbus-user:" + planted["mbus password (cpi.json agent.mbus URL)"] + "@0.0.0.0:6868",
			"ntp":  []string{"time1.example"},
			"blobstore": map[string]any{"provider": "s3", "options": map[string]any{
				"bucket_name":       "b",
				"access_key_id":     "AKIAPLANTED",
				"secret_access_key": planted["agent blobstore secret key (cpi.json)"],
				"password":          planted["agent blobstore password (cpi.json agent.blobstore.options)"],
			}},
		},
	}
	for k, v := range extra {
		overrides[k] = v
	}
	client := suite.Client
	client.ConfigPath = filepath.Join(t.TempDir(), "cpi.json")
	if err := suite.WriteConfig(client.ConfigPath, overrides); err != nil {
		t.Fatal(err)
	}
	return client
}

// secretEnv is a create_vm env as a director sends it, with credentials.
func secretEnv() map[string]any {
	return map[string]any{"bosh": map[string]any{
		"group":    "secrets",
		"password": planted["env.bosh.password"],
		"blobstores": []any{
			map[string]any{"provider": "s3", "options": map[string]any{
				"access_key_id": "AKIAENV", "secret_access_key": planted["env.bosh.blobstores secret_access_key"]}},
			map[string]any{"provider": "dav", "options": map[string]any{
				"endpoint": "http://blobstore:" + planted["env.bosh.blobstores password"] + "@10.0.0.6:25250",
				"user":     "agent", "password": planted["env.bosh.blobstores password"]}},
		},
		"mbus": map[string]any{"cert": map[string]any{"private_key": privateKey, "certificate": "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n"}},
	}}
}

// assertNoSecret fails the test when a planted secret appears in what the
// CPI wrote to stderr (the director's task log) or in its response, which
// the director logs too.
func assertNoSecret(t *testing.T, what string, run cpiclient.Run) {
	t.Helper()
	for name, secret := range planted {
		if strings.Contains(run.Stderr, secret) {
			t.Errorf("%s: the %s is in the CPI's log:\n%s", what, name, lineWith(run.Stderr, secret))
		}
		if strings.Contains(string(run.Stdout), secret) {
			t.Errorf("%s: the %s is in the CPI's response: %s", what, name, run.Stdout)
		}
	}
	if run.Stdout == nil {
		t.Errorf("%s: no response; stderr:\n%s", what, run.Stderr)
	}
}

// assertNotIn fails the test when a planted secret is in text.
func assertNotIn(t *testing.T, what, text string) {
	t.Helper()
	for name, secret := range planted {
		if strings.Contains(text, secret) {
			t.Errorf("the %s is in %s: %s", name, what, lineWith(text, secret))
		}
	}
}

func lineWith(s, secret string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, secret) {
			return l
		}
	}
	return ""
}

// TestSecretsNeverLogged: with every kind of credential planted in cpi.json
// and in create_vm's env, and debug logging on, no call's log line or
// response carries one, whether the call succeeds or fails; the files the
// CPI keeps them in are its own, readable by nobody else.
func TestSecretsNeverLogged(t *testing.T) {
	t.Setenv("BOSH_LIBVIRT_CPI_LOG_LEVEL", "debug")
	stemcell := importStemcell(t, "1G")
	client := secretConfig(t, nil)
	props := map[string]any{"cpus": 1, "memory": 256, "ephemeral_disk": 512, "ssh_public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKnLP7TnBycMPHi3GyuaH+xedM9nLP7X+y/c1e6Xe4TW test"}

	for _, api := range []int{2, 1} {
		client.StemcellAPIVersion = api
		call := func(method string, args ...any) cpiclient.Run {
			run, err := client.RunRaw(client.Request(method, args...))
			if err != nil {
				t.Fatalf("API %d %s: %v", api, method, err)
			}
			assertNoSecret(t, method, run)
			t.Logf("API %d %s: %.1fs", api, method, run.Took.Seconds())
			return run
		}
		cid, run, err := client.CreateVM("agent-secrets", stemcell, props, suite.Networks(30+api), secretEnv(), nil)
		assertNoSecret(t, "create_vm", run)
		if err != nil {
			t.Fatalf("API %d create_vm: %v\nstderr:\n%s", api, err, run.Stderr)
		}
		assertPrivateFiles(t, suite.StoreDir, cid)
		assertNotIn(t, "the domain XML of "+cid, mustVirsh(t, "dumpxml", cid))
		if qemuLog, err := os.ReadFile(filepath.Join("/var/log/libvirt/qemu", cid+".log")); err == nil {
			assertNotIn(t, "libvirt's QEMU log of "+cid, string(qemuLog))
		}

		// A disk attached to the VM (a blank guest never acknowledges a
		// detach: delete_vm takes it off).
		disk := resultString(t, call("create_disk", 64, map[string]any{}, cid).Response.Result)
		call("attach_disk", cid, disk)
		call("set_vm_metadata", cid, map[string]any{"director": "d", "deployment": "secrets"})
		// Failures log the error and its cause: a create_vm that fails
		// after the settings are made (a stemcell that is not there), and
		// one refused while reading its network settings.
		for _, bad := range []struct {
			stemcell string
			networks map[string]any
		}{
			{"sc-00000000-0000-0000-0000-000000000000", suite.Networks(40 + api)},
			{stemcell, map[string]any{"private": map[string]any{"type": "manual", "ip": "999.1.1.1", "netmask": "255.255.255.0"}}},
		} {
			_, run, err := client.CreateVM("agent-secrets-bad", bad.stemcell, props, bad.networks, secretEnv(), nil)
			assertNoSecret(t, "failing create_vm", run)
			if err == nil {
				t.Errorf("create_vm of %s with %v succeeded; want an error", bad.stemcell, bad.networks)
			}
		}
		if run := call("delete_vm", cid); run.Response.Error != nil {
			t.Fatalf("delete_vm: %v", run.Response.Error)
		}
		call("delete_disk", disk)
	}

	// An operator who pastes a private key where the public key goes is
	// told so, in a message that does not quote the key.
	mistaken := map[string]any{"cpus": 1, "memory": 256, "ssh_public_key": privateKey}
	_, run, err := client.CreateVM("agent-secrets-key", stemcell, mistaken, suite.Networks(45), secretEnv(), nil)
	assertNoSecret(t, "create_vm with a private key as ssh_public_key", run)
	if err == nil {
		t.Error("create_vm with a private key as ssh_public_key succeeded")
	}
	keyConfig := secretConfig(t, map[string]any{"ssh_public_key": privateKey})
	run, err = keyConfig.RunRaw(keyConfig.Request("has_vm", "vm-00000000-0000-0000-0000-000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "has_vm with a private key as cpi.json ssh_public_key", run)
	if run.Response.Error == nil {
		t.Error("a cpi.json with a private key as ssh_public_key was accepted")
	}

	// Old CPI job templates render a registry block: the CPI refuses the
	// key, and must not echo what is in it.
	refused := secretConfig(t, map[string]any{"registry": map[string]any{
		"endpoint": "http://admin:" + planted["registry URL password (cpi.json, refused)"] + "@127.0.0.1:25777",
		"user":     "admin", "password": planted["registry password (cpi.json, refused)"],
	}})
	run, err = refused.RunRaw(refused.Request("has_vm", "vm-00000000-0000-0000-0000-000000000000"))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "has_vm with a registry in cpi.json", run)
	if run.Response.Error == nil || !strings.Contains(run.Response.Error.Message, "registry") {
		t.Errorf("a cpi.json with a registry key: want an error naming it, got %s", run.Stdout)
	}
	assertNothingLeft(t, "sc-")
}

// assertPrivateFiles checks every file under storeDir that names the VM
// (its settings, its SSH key, its config drive and disks in the pool):
// mode 0600 and owned by the CPI's user, or, for a volume of a running
// domain, by the user the system libvirtd runs QEMU as (libvirt's dynamic
// ownership hands QEMU the files it opens and gives them back after).
func assertPrivateFiles(t *testing.T, storeDir, cid string) {
	t.Helper()
	qemu := qemuUIDs(t)
	found := 0
	err := filepath.WalkDir(storeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(d.Name(), cid) {
			return err
		}
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		found++
		rel, _ := filepath.Rel(storeDir, path)
		uid := info.Sys().(*syscall.Stat_t).Uid
		console := strings.HasPrefix(rel, "console/")
		t.Logf("%s: mode %04o, uid %d", rel, info.Mode().Perm(), uid)
		switch {
		case !console && info.Mode().Perm() != 0o600:
			t.Errorf("%s: mode %04o; want 0600 (it may hold agent settings)", rel, info.Mode().Perm())
		case console && info.Mode().Perm()&0o007 != 0:
			// virtlogd makes the console log 0600; the guest's output is
			// no one else's business either.
			t.Errorf("%s: mode %04o; want nothing for others", rel, info.Mode().Perm())
		}
		if uid != uint32(os.Getuid()) && !qemu[uid] {
			t.Errorf("%s: owned by uid %d; want the CPI's (%d) or QEMU's %v", rel, uid, os.Getuid(), qemu)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 3 {
		t.Errorf("found %d files of VM %s under %s; want its root, ephemeral and config drive volumes at least", found, cid, storeDir)
	}
}

// qemuUIDs are the users running QEMU processes on this host.
func qemuUIDs(t *testing.T) map[uint32]bool {
	uids := map[uint32]bool{}
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		comm, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(comm), "qemu-system") {
			continue
		}
		if info, err := os.Stat(filepath.Dir(p)); err == nil {
			uids[info.Sys().(*syscall.Stat_t).Uid] = true
		}
	}
	return uids
}
