package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// LXC containers through libvirt's lxc driver, in the same run as QEMU:
// create_vm / delete_vm on a small and a large warden stemcell (the root
// is an overlay, so the size should not matter), each against a plain
// baseline: the same container domain defined and started, then destroyed
// and undefined, with virsh, on a root directory already in place (what
// the CPI adds is the overlay mount, the settings file and its checks).
// The lxc libvirtd is the private one scripts/lxc-host.sh starts; its
// store directory is shared with it (see there).

// lxcRootLine is the root filesystem's source in a container's XML.
var lxcRootLine = regexp.MustCompile(`<source dir='[^']*/rootfs'/>`)

func (b bench) lxcLatency(uri, sharedStore string) error {
	env, err := devenv.New(".", uri, "benchlxc")
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %v\n", err)
		}
	}()
	store, err := os.MkdirTemp(sharedStore, "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	if err := env.WriteConfig(env.Client.ConfigPath, map[string]any{"store_dir": store, "pool_path": store + "/pool"}); err != nil {
		return err
	}
	medians := map[string]time.Duration{}
	for _, size := range []struct {
		name  string
		files int // 256 KiB each, random
	}{{"small", 0}, {"large", 2048}} {
		image := filepath.Join(env.Root, size.name+".tgz")
		if err := wardenImage(image, size.files); err != nil {
			return err
		}
		started := time.Now()
		sc, run, err := env.Client.CallString("create_stemcell", image, map[string]any{"name": "bench-" + size.name})
		if err != nil {
			return fmt.Errorf("create_stemcell (lxc): %w\n%s", err, run.Stderr)
		}
		report(fmt.Sprintf("lxc create_stemcell, %s rootfs (%d MiB)", size.name, size.files/4), time.Since(started), "")
		root := filepath.Join(store, "lxc", "stemcells", sc)
		var creates, deletes, plainCreates, plainDeletes []time.Duration
		for i := 0; i < b.runs; i++ {
			cid, run, err := env.Client.CreateVM(fmt.Sprintf("bench-%d", i), sc,
				map[string]any{"cpu": 1, "memory": 256}, env.Networks(10+i), map[string]any{}, nil)
			if err != nil {
				return fmt.Errorf("create_vm (lxc): %w\n%s", err, run.Stderr)
			}
			creates = append(creates, run.Took)
			plain, err := b.copyContainer(env, cid, fmt.Sprintf("cpi-benchlxcplain%d-%d", i, os.Getpid()), root)
			if err != nil {
				return err
			}
			if _, run, err = env.Client.Call("delete_vm", cid); err != nil {
				return fmt.Errorf("delete_vm (lxc): %w\n%s", err, run.Stderr)
			}
			deletes = append(deletes, run.Took)
			if err := plainContainerRound(env, plain, &plainCreates, &plainDeletes); err != nil {
				return err
			}
		}
		medians[size.name] = median(creates)
		report(fmt.Sprintf("lxc create_vm, %s rootfs", size.name), medians[size.name], "")
		report(fmt.Sprintf("lxc delete_vm, %s rootfs", size.name), median(deletes), "")
		ratio(fmt.Sprintf("lxc create_vm / plain define+start (%s)", size.name), medians[size.name], median(plainCreates), "")
		ratio(fmt.Sprintf("lxc delete_vm / plain destroy+undef (%s)", size.name), median(deletes), median(plainDeletes), "")
		if size.files > 0 {
			// What a per-container copy would cost instead of the overlay.
			copyDir := filepath.Join(store, "copy")
			started := time.Now()
			if out, err := exec.Command("cp", "-a", root, copyDir).CombinedOutput(); err != nil {
				return fmt.Errorf("cp -a: %v: %s", err, out)
			}
			report("  (a full copy of that rootfs, cp -a)", time.Since(started), "")
			os.RemoveAll(copyDir)
		}
		if _, run, err := env.Client.Call("delete_stemcell", sc); err != nil {
			return fmt.Errorf("delete_stemcell (lxc): %w\n%s", err, run.Stderr)
		}
	}
	fmt.Printf("%-44s %10.2f x\n", "lxc create_vm large / small rootfs", float64(medians["large"])/float64(medians["small"]))
	return nil
}

// copyContainer writes the XML of container cid with cid replaced by
// name and its root pointed at root (the stemcell's directory): an
// equivalent container whose root needs no mount.
func (b bench) copyContainer(env *devenv.Env, cid, name, root string) (string, error) {
	domain, err := env.Virsh("dumpxml", "--inactive", cid)
	if err != nil {
		return "", err
	}
	domain = macLine.ReplaceAllString(uuidLine.ReplaceAllString(domain, ""), "")
	domain = lxcRootLine.ReplaceAllString(domain, fmt.Sprintf("<source dir='%s'/>", root))
	path := filepath.Join(env.Root, name+".xml")
	return path, os.WriteFile(path, []byte(strings.ReplaceAll(domain, cid, name)), 0o644)
}

func plainContainerRound(env *devenv.Env, domainXML string, creates, deletes *[]time.Duration) error {
	name := strings.TrimSuffix(filepath.Base(domainXML), ".xml")
	start := time.Now()
	for _, args := range [][]string{{"define", domainXML}, {"start", name}} {
		if out, err := env.Virsh(args...); err != nil {
			return fmt.Errorf("plain baseline: virsh %v: %v %s", args, err, out)
		}
	}
	*creates = append(*creates, time.Since(start))
	start = time.Now()
	for _, args := range [][]string{{"destroy", name}, {"undefine", name}} {
		if out, err := env.Virsh(args...); err != nil {
			return fmt.Errorf("plain baseline: virsh %v: %v %s", args, err, out)
		}
	}
	*deletes = append(*deletes, time.Since(start))
	return nil
}

// wardenImage writes a warden stemcell image: busybox whose init only
// waits, plus files of 256 KiB random bytes (a real rootfs does not
// compress to nothing).
func wardenImage(path string, files int) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox-static (scripts/host.sh installs it): %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	add := func(h *tar.Header, body []byte) error {
		h.Size, h.ModTime = int64(len(body)), time.Now()
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, d := range []string{"bin/", "sbin/", "etc/", "tmp/", "proc/", "sys/", "dev/", "var/", "usr/", "usr/share/"} {
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: d}, nil); err != nil {
			return err
		}
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox"}, bb)
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox"}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "sbin/init"}, []byte("#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do /bin/busybox sleep 1; done\n"))
	chunk := make([]byte, 256<<10)
	for i := range files {
		rand.Read(chunk)
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/share/f%05d", i), Mode: 0o644}, chunk); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
