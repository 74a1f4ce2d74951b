package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"
)

// requiredModules are what the guest needs of Debian's kernel, which builds
// them as modules: the disks and NIC (virtio), the config drive (AHCI
// CD-ROM with ISO9660, or vfat), ext4 for data disks (crc32c for its
// checksums: nothing here could autoload it) and the ACPI power button.
// The stemcell build asks this list (list-modules) which files to copy.
var requiredModules = []string{
	"virtio_pci", "virtio_blk", "virtio_net",
	"virtio_scsi", "sd_mod", // disks on a SCSI bus (vSphere-format stemcells)
	"ahci", "sr_mod", "isofs",
	"vfat", "nls_cp437", "nls_ascii",
	"crc32c_generic", "ext4",
	"button", "evdev",
}

// moduleName is a module's name as modprobe compares it: the file's base
// name without .ko, with '-' and '_' the same.
func moduleName(path string) string {
	base := filepath.Base(path)
	base = strings.TrimSuffix(base, filepath.Ext(base)) // .xz/.zst/.ko
	base = strings.TrimSuffix(base, ".ko")
	return strings.ReplaceAll(base, "-", "_")
}

// parseModulesDep reads depmod's modules.dep: "path: dep dep ...".
func parseModulesDep(r io.Reader) (map[string][]string, error) {
	deps := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		path, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[strings.TrimSpace(path)] = strings.Fields(rest)
	}
	return deps, sc.Err()
}

// loadOrder lists the module files to load for the wanted modules, each
// after everything it depends on, each once. A wanted module that is not in
// modules.dep is fine when builtin says the kernel has it built in.
func loadOrder(deps map[string][]string, builtin map[string]bool, wanted []string) ([]string, error) {
	byName := map[string]string{}
	for path := range deps {
		byName[moduleName(path)] = path
	}
	var order []string
	seen := map[string]bool{}
	var visit func(path string, chain []string) error
	visit = func(path string, chain []string) error {
		if seen[path] {
			return nil
		}
		for _, c := range chain {
			if c == path {
				return fmt.Errorf("modules.dep has a dependency cycle through %s", path)
			}
		}
		for _, d := range deps[path] {
			if _, ok := deps[d]; !ok {
				return fmt.Errorf("%s depends on %s, which modules.dep does not list", path, d)
			}
			if err := visit(d, append(chain, path)); err != nil {
				return err
			}
		}
		seen[path] = true
		order = append(order, path)
		return nil
	}
	for _, name := range wanted {
		path, ok := byName[strings.ReplaceAll(name, "-", "_")]
		if !ok {
			if builtin[strings.ReplaceAll(name, "-", "_")] {
				continue
			}
			return nil, fmt.Errorf("module %s is neither in modules.dep nor built in", name)
		}
		if err := visit(path, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// parseModulesBuiltin reads modules.builtin: one module path a line.
func parseModulesBuiltin(r io.Reader) (map[string]bool, error) {
	names := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			names[moduleName(line)] = true
		}
	}
	return names, sc.Err()
}

// requiredModuleFiles is the load order of requiredModules in a kernel's
// module directory (/lib/modules/<release>), paths relative to it.
func requiredModuleFiles(dir string) ([]string, error) {
	depFile, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer depFile.Close()
	deps, err := parseModulesDep(depFile)
	if err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	builtin := map[string]bool{}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		builtin, err = parseModulesBuiltin(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading modules.builtin: %w", err)
		}
	}
	return loadOrder(deps, builtin, requiredModules)
}

// sysFinitModule is finit_module(2) on amd64 (the syscall package names no
// constant for it); the test stemcell is amd64 only.
const sysFinitModule = 313

// loadModules loads the required modules of the running kernel in order.
func loadModules() error {
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		return err
	}
	dir := filepath.Join("/lib/modules", utsString(uts.Release[:]))
	files, err := requiredModuleFiles(dir)
	if err != nil {
		return err
	}
	for _, rel := range files {
		if err := insertModule(filepath.Join(dir, rel)); err != nil {
			return err
		}
	}
	return nil
}

func insertModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	params := []byte{0}
	_, _, errno := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(&params[0])), 0)
	if errno != 0 && errno != syscall.EEXIST {
		return fmt.Errorf("loading module %s: %w", path, errno)
	}
	return nil
}

func utsString(field []int8) string {
	b := make([]byte, 0, len(field))
	for _, c := range field {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
