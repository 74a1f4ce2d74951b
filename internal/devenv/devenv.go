// Package devenv sets up a throwaway environment on a real libvirtd for the
// CPI's integration suites, lifecycle demo and bench: the CPI binary, an
// isolated libvirt network of its own, a storage pool name and store_dir of
// its own, a cpi.json, and teardown that checks nothing was left behind.
// It talks to libvirt only through virsh, a client that shares no code
// with the CPI, so what it sees is independent evidence.
package devenv

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// Secrets put into the config so tests can check they never leak.
const (
	MbusPassword      = "mbus-secret-pw"
	BlobstorePassword = "blob-secret-pw"
)

// Env is one environment.
type Env struct {
	URI      string
	Root     string
	StoreDir string
	Pool     string
	Network  string
	// Subnet is the first three octets of the network's /24.
	Subnet string
	Client cpiclient.Client
}

// New builds the CPI from the module at moduleRoot (with buildTags, e.g.
// "faultinject") and prepares an environment named after name (short,
// [a-z0-9-]).
//
// Its objects are named cpi-<name>-<pid> and its files live in
// <tmp>/bosh-libvirt-cpi-<name>-<pid>-*: New first sweeps what runs whose
// process is gone left behind (a killed run cannot clean up), and a
// failing New removes what it made.
func New(moduleRoot, uri, name string, buildTags ...string) (e *Env, err error) {
	SweepDeadRuns(uri)
	pid := os.Getpid()
	root, err := os.MkdirTemp("", fmt.Sprintf("%s%s-%d-", rootPrefix, name, pid))
	if err != nil {
		return nil, err
	}
	// QEMU runs as its own user and must reach the pool under store_dir.
	if err := os.Chmod(root, 0o755); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	id := fmt.Sprintf("%s-%d", name, pid)
	e = &Env{
		URI: uri, Root: root, StoreDir: filepath.Join(root, "store"),
		Pool: objectPrefix + id, Network: objectPrefix + id,
		Subnet: fmt.Sprintf("10.%d.%d", 200+pid%50, pid%250),
	}
	// made, not e: a failing return sets e to nil before this runs.
	made := e
	defer func() {
		if err != nil {
			made.removeAll()
		}
	}()
	e.Client = cpiclient.Client{Binary: filepath.Join(root, "cpi"), ConfigPath: filepath.Join(root, "cpi.json")}
	build := exec.Command("go", "build", "-tags", strings.Join(buildTags, ","), "-o", e.Client.Binary, "./cmd/cpi")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the CPI: %v\n%s", err, out)
	}
	if err := e.defineNetwork(); err != nil {
		return nil, err
	}
	if err := e.WriteConfig(e.Client.ConfigPath, nil); err != nil {
		return nil, err
	}
	return e, nil
}

// defineNetwork makes an isolated network (no forwarding) with DHCP, so
// nothing depends on, or disturbs, the host's networks.
func (e *Env) defineNetwork() error {
	// Bridge names are at most 15 bytes: a hash of the network name fits.
	bridge := fmt.Sprintf("vbr%08x", crc32.ChecksumIEEE([]byte(e.Network)))
	xml := fmt.Sprintf(`<network><name>%s</name><bridge name='%s'/><ip address='%s.1' netmask='255.255.255.0'><dhcp><range start='%s.100' end='%s.200'/></dhcp></ip></network>`,
		e.Network, bridge, e.Subnet, e.Subnet, e.Subnet)
	file := filepath.Join(e.Root, "network.xml")
	if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
		return err
	}
	if out, err := e.Virsh("net-define", file); err != nil {
		return fmt.Errorf("defining network %s: %s", e.Network, out)
	}
	if out, err := e.Virsh("net-start", e.Network); err != nil {
		return fmt.Errorf("starting network %s: %s", e.Network, out)
	}
	return nil
}

// WriteConfig writes a cpi.json for this environment with overrides.
func (e *Env) WriteConfig(path string, overrides map[string]any) error {
	cfg := map[string]any{
		"hypervisor": "auto", "uri": e.URI, "store_dir": e.StoreDir,
		"storage_pool": e.Pool, "pool_path": filepath.Join(e.StoreDir, "pool"), "network": e.Network, "reboot_timeout": 10,
		"agent": map[string]any{
			"mbus":      "https://mbus:" + MbusPassword + "@0.0.0.0:6868",
			"ntp":       []string{"time1.example"},
			"blobstore": map[string]any{"provider": "dav", "options": map[string]any{"endpoint": "http://10.0.0.6:25250", "password": BlobstorePassword}},
		},
	}
	for k, v := range overrides {
		cfg[k] = v
	}
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	return os.WriteFile(path, raw, 0o600)
}

// Close reports what the CPI left behind, then removes everything the
// environment holds (leftovers too), so even a failed run leaves nothing.
func (e *Env) Close() error {
	var problems []string
	if doms, err := e.Domains(); err == nil && len(doms) > 0 {
		problems = append(problems, fmt.Sprintf("domains left: %v", doms))
	}
	if vols, err := e.Volumes(); err == nil && len(vols) > 0 {
		problems = append(problems, fmt.Sprintf("volumes left in pool %s: %v", e.Pool, vols))
	}
	problems = append(problems, e.removeAll()...)
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// removeAll takes down, newest first, whatever of the environment exists:
// domains using its files, its pool, its network, its directory. It
// carries on past failures and returns them.
func (e *Env) removeAll() []string {
	problems := removeRun(e.URI, e.Root, e.Network)
	os.RemoveAll(e.Root)
	return problems
}

// Virsh runs virsh against the environment's libvirtd.
func (e *Env) Virsh(args ...string) (string, error) { return virsh(e.URI, args...) }

func virsh(uri string, args ...string) (string, error) {
	out, err := exec.Command("virsh", append([]string{"-c", uri}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Volumes lists the pool's volumes (none when the pool does not exist).
func (e *Env) Volumes() ([]string, error) { return volumeNames(e.URI, e.Pool) }

func volumeNames(uri, pool string) ([]string, error) {
	// Not `vol-list --name`: virsh before 10 has no such option.
	out, err := virsh(uri, "vol-list", "--pool", pool)
	if err != nil {
		if strings.Contains(out, "no storage pool") {
			return nil, nil
		}
		return nil, fmt.Errorf("listing volumes of pool %s: %s", pool, out)
	}
	return volumeTable(out)
}

// volumeTable reads the names from virsh vol-list's table: a header, a
// line of dashes, then one volume a line, its name first.
func volumeTable(out string) ([]string, error) {
	rows := lines(out)
	if len(rows) < 2 || !strings.HasPrefix(rows[0], "Name") || strings.Trim(rows[1], "-") != "" {
		return nil, fmt.Errorf("virsh vol-list printed no table: %q", out)
	}
	var names []string
	for _, row := range rows[2:] {
		names = append(names, strings.Fields(row)[0])
	}
	return names, nil
}

// Domains lists the CPI VMs of this environment: domains named like CPI VMs
// whose disks live under its store_dir (other suites may share the daemon).
func (e *Env) Domains() ([]string, error) {
	out, err := e.Virsh("list", "--all", "--name")
	if err != nil {
		return nil, fmt.Errorf("%s", out)
	}
	var doms []string
	for _, d := range lines(out) {
		if !strings.HasPrefix(d, "vm-") {
			continue
		}
		if xml, err := e.Virsh("dumpxml", "--inactive", d); err == nil && strings.Contains(xml, e.StoreDir) {
			doms = append(doms, d)
		}
	}
	return doms, nil
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// LeftOver lists CPI objects and files remaining, except volumes whose
// names start with one of keep.
func (e *Env) LeftOver(keep ...string) []string {
	var left []string
	doms, err := e.Domains()
	if err != nil {
		// An unanswered question is no clean answer.
		left = append(left, "domains: "+err.Error())
	}
	for _, d := range doms {
		left = append(left, "domain "+d)
	}
	vols, err := e.Volumes()
	if err != nil {
		left = append(left, "volumes: "+err.Error())
	}
	for _, v := range vols {
		kept := false
		for _, k := range keep {
			kept = kept || strings.HasPrefix(v, k)
		}
		if !kept {
			left = append(left, "volume "+v)
		}
	}
	return append(left, leftOverFiles(e.StoreDir)...)
}

// leftOverFiles are the files under store_dir that a VM leaves until it is
// deleted: console logs and saved settings. The console logs delete_vm
// keeps on purpose are not among them.
func leftOverFiles(storeDir string) []string {
	var left []string
	for _, dir := range []string{"console", "vms", vm.KeptConsoleDir("console")} {
		entries, _ := os.ReadDir(filepath.Join(storeDir, dir))
		for _, f := range entries {
			if !keptConsoleEntry(dir, f) {
				left = append(left, "file "+dir+"/"+f.Name())
			}
		}
	}
	return left
}

// keptConsoleEntry tells whether a store_dir entry is what delete_vm keeps
// on purpose: the directory of kept console logs, or a kept log in it.
// A live VM's console log is not.
func keptConsoleEntry(dir string, f os.DirEntry) bool {
	keptDir := vm.KeptConsoleDir("console")
	if dir == "console" {
		return f.IsDir() && filepath.Join(dir, f.Name()) == keptDir
	}
	_, kept := vm.KeptConsoleLogTime(f.Name())
	return dir == keptDir && kept && f.Type().IsRegular()
}

// Networks is one manual network with a static IP (hostPart) and one
// dynamic network, both on the environment's libvirt network.
func (e *Env) Networks(hostPart int) map[string]any {
	return map[string]any{
		"private": map[string]any{
			"type": "manual", "ip": fmt.Sprintf("%s.%d", e.Subnet, hostPart), "netmask": "255.255.255.0",
			"gateway": e.Subnet + ".1", "dns": []string{e.Subnet + ".1"}, "default": []string{"dns", "gateway"},
			"cloud_properties": map[string]any{"name": e.Network},
		},
		"dhcp": map[string]any{"type": "dynamic", "cloud_properties": map[string]any{}},
	}
}

// BlankStemcellImage writes an OpenStack-style `image` tgz into dir holding
// a blank qcow2 root.img of the given virtual size ("1G", "10G").
func BlankStemcellImage(dir, virtualSize string) (string, error) {
	root := filepath.Join(dir, "root.img")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", root, virtualSize).CombinedOutput(); err != nil {
		return "", fmt.Errorf("qemu-img create: %v: %s", err, out)
	}
	image := filepath.Join(dir, "image")
	return image, TarGz(image, root)
}

// TarGz writes files (by base name) into a gzipped tar at dest.
func TarGz(dest string, files ...string) error {
	out, err := os.Create(dest)
	if err != nil {
		return err
	}
	defer out.Close()
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := addFile(tw, f); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func addFile(tw *tar.Writer, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: filepath.Base(path), Mode: 0o644, Size: info.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(tw, in)
	return err
}

// URIEnv names the libvirt URI the suites test against.
const URIEnv = "BOSH_LIBVIRT_CPI_URI"

// DefaultURI is the libvirt the tools use unless told otherwise: $URIEnv,
// else the local system daemon.
func DefaultURI() string {
	if uri := os.Getenv(URIEnv); uri != "" {
		return uri
	}
	return "qemu:///system"
}

// SuiteURI gives a suite its libvirt URI. Without one a suite is not run on
// a workstation (run=false), but in CI that is an error: the test command
// must start libvirtd and set the URI, and a silent skip would hide it.
func SuiteURI(suite string) (uri string, run bool, err error) {
	uri = os.Getenv(URIEnv)
	switch {
	case uri != "":
		return uri, true, nil
	case os.Getenv("CI") != "":
		return "", false, fmt.Errorf("%s: %s is not set: the test command must start libvirtd and export it", suite, URIEnv)
	}
	fmt.Printf("%s: %s not set, not run (scripts/test.sh sets it)\n", suite, URIEnv)
	return "", false, nil
}
