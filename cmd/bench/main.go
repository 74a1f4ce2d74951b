// Command bench measures the CPI on this machine, the way a director uses
// it (one process per call), and prints each figure next to its target:
// info process time, create_vm / delete_vm latency, create_vm on a 1 GiB and
// a 10 GiB stemcell, create_stemcell against a plain `tar -xzf` of the same
// tarball, attach_disk / detach_disk latency and 8 parallel attaches; then
// create_vm, delete_vm and attach_disk with runtime docker against a plain
// Docker API baseline (docker.go); and, with the private lxc libvirtd of
// scripts/lxc-host.sh, create_vm / delete_vm of LXC containers (lxc.go).
// Run it with scripts/bench.sh (which starts libvirtd, dockerd and the
// private lxc libvirtd).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

func main() {
	uri := flag.String("uri", devenv.DefaultURI(), "libvirt URI")
	runs := flag.Int("runs", 5, "samples per latency figure")
	stemcell := flag.String("stemcell", "build/test-stemcell.tgz", "bootable stemcell for the disk figures (hot-unplug needs a guest that acknowledges it)")
	dataMiB := flag.Int("stemcell-data", 512, "MiB of data in the stemcell used for the create_stemcell figure")
	only := flag.String("only", "", "'vm': only the create_vm/delete_vm figures (QEMU, and LXC when its libvirtd is given); 'lxc': only LXC's; 'docker': only Docker's")
	flag.Parse()
	if err := run(*uri, *runs, *stemcell, *dataMiB, *only); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type bench struct {
	env  *devenv.Env
	runs int
}

func run(uri string, runs int, stemcellTarball string, dataMiB int, only string) error {
	b := bench{runs: runs}
	fmt.Printf("bench: %d samples per figure, medians; libvirt %s; %s\n\n", runs, uri, accel())
	fmt.Printf("%-44s %12s   %s\n", "figure", "measured", "target")
	if only != "lxc" {
		env, err := devenv.New(".", uri, "bench")
		if err != nil {
			return err
		}
		defer func() {
			if err := env.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
			}
		}()
		b.env = env
		steps := []func() error{
			b.info,
			b.vmLatency,
			func() error { return b.stemcellImport(dataMiB) },
			func() error { return b.diskLatency(stemcellTarball) },
			b.dockerLatency,
		}
		switch only {
		case "vm":
			steps = []func() error{b.vmLatency}
		case "docker":
			steps = []func() error{b.dockerLatency}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
	}
	// The private lxc libvirtd of scripts/lxc-host.sh, when it runs.
	if lxcURI := os.Getenv("BOSH_LIBVIRT_CPI_LXC_URI"); lxcURI != "" {
		return b.lxcLatency(lxcURI, os.Getenv("BOSH_LIBVIRT_CPI_LXC_STORE"))
	}
	return nil
}

// accel says what the CPI's log says in full ("domain type decided"): a
// /dev/kvm alone does not make KVM work.
func accel() string {
	if _, err := os.Stat("/dev/kvm"); err == nil {
		return "/dev/kvm present (the CPI still picks TCG where the CPU lacks vmx/svm)"
	}
	return "no /dev/kvm (QEMU TCG)"
}

func report(figure string, d time.Duration, target string) {
	fmt.Printf("%-44s %10.3f s   %s\n", figure, d.Seconds(), target)
}

func median(samples []time.Duration) time.Duration {
	sorted := append([]time.Duration(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[len(sorted)/2]
}

func (b bench) info() error {
	var samples []time.Duration
	for i := 0; i < 4*b.runs; i++ {
		_, run, err := b.env.Client.Call("info")
		if err != nil {
			return err
		}
		samples = append(samples, run.Took)
	}
	report("info (whole process)", median(samples), "< 0.030 s")
	return nil
}

// importBlank imports a blank stemcell of virtual size and returns its CID.
func (b bench) importBlank(size string) (string, error) {
	image, err := devenv.BlankStemcellImage(b.env.Root+"/"+size, size)
	if err != nil {
		return "", err
	}
	cid, _, err := b.env.Client.CallString("create_stemcell", image, map[string]any{"disk_format": "qcow2"})
	return cid, err
}

func (b bench) vmLatency() error {
	medians := map[string]time.Duration{}
	for _, size := range []string{"1G", "10G"} {
		if err := os.MkdirAll(b.env.Root+"/"+size, 0o755); err != nil {
			return err
		}
		stemcell, err := b.importBlank(size)
		if err != nil {
			return err
		}
		var creates, deletes, plainCreates, plainDeletes []time.Duration
		for i := 0; i < b.runs; i++ {
			cid, run, err := b.env.Client.CreateVM(fmt.Sprintf("bench-%d", i), stemcell,
				map[string]any{"memory": 256, "ephemeral_disk": 1024}, b.env.Networks(10+i), map[string]any{}, nil)
			if err != nil {
				return fmt.Errorf("%w\n%s", err, run.Stderr)
			}
			creates = append(creates, run.Took)
			var plain plainVM
			if size == "1G" {
				// Interleaved, so both see the same machine.
				if plain, err = b.copyVM(cid, fmt.Sprintf("cpi-benchplain%d-%d", i, os.Getpid()), b.env.Root+"/"+size); err != nil {
					return err
				}
			}
			_, run, err = b.env.Client.Call("delete_vm", cid)
			if err != nil {
				return err
			}
			deletes = append(deletes, run.Took)
			if size == "1G" {
				if err := b.plainRound(plain, &plainCreates, &plainDeletes); err != nil {
					return err
				}
			}
		}
		medians[size] = median(creates)
		report(fmt.Sprintf("create_vm, %s stemcell", size), medians[size], "< 1.5 s")
		if size == "1G" {
			report("delete_vm", median(deletes), "")
			ratio("create_vm / plain define+start", medians[size], median(plainCreates), "within 1.10 x")
			ratio("delete_vm / plain destroy+undefine", median(deletes), median(plainDeletes), "within 1.10 x")
		}
		if _, _, err := b.env.Client.Call("delete_stemcell", stemcell); err != nil {
			return err
		}
	}
	ratio := float64(medians["10G"]) / float64(medians["1G"])
	fmt.Printf("%-44s %10.2f x   %s\n", "create_vm 10 GiB / 1 GiB stemcell", ratio, "within 1.20 x")
	return nil
}

// plainRound creates and removes the plain copy once, recording both.
func (b bench) plainRound(p plainVM, creates, deletes *[]time.Duration) error {
	took, err := p.create(b)
	if err != nil {
		return fmt.Errorf("plain baseline: %w", err)
	}
	*creates = append(*creates, took)
	if took, err = p.remove(b); err != nil {
		return fmt.Errorf("plain baseline: %w", err)
	}
	*deletes = append(*deletes, took)
	return nil
}

// stemcellImport times create_stemcell against `tar -xzf` of the same
// image tarball, on a stemcell holding dataMiB of data (half random).
func (b bench) stemcellImport(dataMiB int) error {
	dir := filepath.Join(b.env.Root, "data-stemcell")
	image, err := dataStemcell(dir, dataMiB)
	if err != nil {
		return err
	}
	info, _ := os.Stat(image)
	var imports, untars []time.Duration
	for i := 0; i < 3; i++ {
		out := filepath.Join(dir, fmt.Sprintf("untar-%d", i))
		os.MkdirAll(out, 0o755)
		start := time.Now()
		if msg, err := exec.Command("tar", "-xzf", image, "-C", out).CombinedOutput(); err != nil {
			return fmt.Errorf("tar -xzf: %v: %s", err, msg)
		}
		untars = append(untars, time.Since(start))
		os.RemoveAll(out)

		cid, run, err := b.env.Client.CallString("create_stemcell", image, map[string]any{"disk_format": "qcow2"})
		if err != nil {
			return err
		}
		imports = append(imports, run.Took)
		if _, _, err := b.env.Client.Call("delete_stemcell", cid); err != nil {
			return err
		}
	}
	fmt.Printf("%-44s %10.0f MiB\n", "stemcell image tarball", float64(info.Size())/(1<<20))
	report("tar -xzf of the image tarball", median(untars), "")
	report("create_stemcell of the same", median(imports), "")
	fmt.Printf("%-44s %10.2f x   %s\n", "create_stemcell / tar -xzf", float64(median(imports))/float64(median(untars)), "within 1.50 x")
	return nil
}

// dataStemcell writes a qcow2 root.img with dataMiB of data, half random
// (incompressible) and half repetitive, and packs it as `image`.
func dataStemcell(dir string, dataMiB int) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	raw := filepath.Join(dir, "root.raw")
	half := dataMiB / 2
	script := fmt.Sprintf("truncate -s 2G %[1]s && dd if=/dev/urandom of=%[1]s bs=1M count=%[2]d conv=notrunc status=none && "+
		"yes 'bosh stemcell filler line' | head -c %[3]dM | dd of=%[1]s bs=1M seek=%[2]d conv=notrunc status=none iflag=fullblock",
		raw, half, dataMiB-half)
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		return "", fmt.Errorf("making stemcell data: %v: %s", err, out)
	}
	root := filepath.Join(dir, "root.img")
	if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", "-o", "compat=0.10", raw, root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("qemu-img convert: %v: %s", err, out)
	}
	os.Remove(raw)
	image := filepath.Join(dir, "image")
	return image, devenv.TarGz(image, root)
}

func (b bench) diskLatency(stemcellTarball string) error {
	if _, err := os.Stat(stemcellTarball); err != nil {
		fmt.Printf("%-44s %12s   (no %s: make test-stemcell)\n", "attach_disk / detach_disk", "skipped", stemcellTarball)
		return nil
	}
	image, manifest, err := devenv.UnpackStemcell(stemcellTarball, b.env.Root)
	if err != nil {
		return err
	}
	stemcell, _, err := b.env.Client.CallString("create_stemcell", image, manifest.CloudProperties)
	if err != nil {
		return err
	}
	defer b.env.Client.Call("delete_stemcell", stemcell)
	vm, run, err := b.env.Client.CreateVM("bench-disks", stemcell, map[string]any{"memory": 512}, b.env.Networks(50), map[string]any{}, nil)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, run.Stderr)
	}
	defer b.env.Client.Call("delete_vm", vm)
	time.Sleep(15 * time.Second) // let the guest boot so it acknowledges hot-unplug
	disk, _, err := b.env.Client.CallString("create_disk", 64, map[string]any{}, vm)
	if err != nil {
		return err
	}
	defer b.env.Client.Call("delete_disk", disk)
	var attaches, detaches []time.Duration
	for i := 0; i < b.runs; i++ {
		_, run, err := b.env.Client.Call("attach_disk", vm, disk)
		if err != nil {
			return err
		}
		attaches = append(attaches, run.Took)
		_, run, err = b.env.Client.Call("detach_disk", vm, disk)
		if err != nil {
			return err
		}
		detaches = append(detaches, run.Took)
	}
	report("attach_disk (running VM)", median(attaches), "")
	report("detach_disk (running VM)", median(detaches), "")
	return b.parallelAttach(vm)
}

func (b bench) parallelAttach(vm string) error {
	const n = 8
	disks := make([]string, n)
	for i := range disks {
		cid, _, err := b.env.Client.CallString("create_disk", 16, map[string]any{}, vm)
		if err != nil {
			return err
		}
		disks[i] = cid
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, d := range disks {
		wg.Add(1)
		go func(i int, d string) {
			defer wg.Done()
			_, _, errs[i] = b.env.Client.Call("attach_disk", vm, d)
		}(i, d)
	}
	wg.Wait()
	report("8 parallel attach_disk, one VM (wall)", time.Since(start), "")
	for i, d := range disks {
		if errs[i] != nil {
			return errs[i]
		}
		b.env.Client.Call("detach_disk", vm, d)
		b.env.Client.Call("delete_disk", d)
	}
	return nil
}
