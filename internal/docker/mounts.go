package docker

// Host-side mounts for persistent disks. A VM's directory
// <store_dir>/vms/<cid>/disks is bind-mounted onto itself and made a
// shared mount at create_vm; the container gets it at DiskHintDir with
// rslave propagation. attach_disk loop-mounts the disk's ext4 image at
// .../disks/<disk-cid> on the host and the mount appears in the running
// container: no restart, no recreate. It needs root on the Docker host,
// in the mount namespace dockerd runs in.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sharedDir makes dir a shared mount point (a bind mount of itself).
func sharedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating disk directory '%s': %w", dir, err)
	}
	mounted, err := isMountpoint(dir)
	if err != nil {
		return err
	}
	if !mounted {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting disk directory '%s' (needs root on the Docker host): %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making '%s' a shared mount: %w", dir, err)
	}
	return nil
}

// unmount detaches the mount at dir; nothing mounted there is no error.
func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmounting '%s': %w", dir, err)
}

// isMountpoint tells whether dir is a mount point in this namespace.
func isMountpoint(dir string) (bool, error) {
	abs, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == abs {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// loopMount mounts an ext4 image at dir. mount(8) picks a free loop
// device under its own lock and sets autoclear, so the device goes away
// with the last mount.
func loopMount(img, dir string) error {
	return run("mount", "-t", "ext4", "-o", "loop", img, dir)
}

// loopBacked tells whether a loop device still uses img (a mount of the
// disk survives somewhere, e.g. the agent's bind mount in a container).
func loopBacked(img string) (bool, error) {
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return false, err
	}
	abs, err := filepath.EvalSymlinks(img)
	if err != nil {
		return false, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.TrimSpace(string(b)) == abs {
			return true, nil
		}
	}
	return false, nil
}

// loopDev is the major:minor of the loop device backing img, or "".
func loopDev(img string) (string, error) {
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return "", err
	}
	abs, err := filepath.EvalSymlinks(img)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || strings.TrimSpace(string(b)) != abs {
			continue
		}
		dev, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(f)), "dev"))
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(dev)), nil
	}
	return "", nil
}

// mountsOf counts the mounts of device dev (major:minor) in the mount
// namespace of process pid.
func mountsOf(pid int, dev string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 2 && fields[2] == dev {
			n++
		}
	}
	return n, sc.Err()
}

// waitLoopFree waits for the kernel to release img's loop device after
// its last unmount (autoclear runs when the device is closed).
func waitLoopFree(img string) (bool, error) {
	for i := 0; ; i++ {
		busy, err := loopBacked(img)
		if err != nil || !busy || i == 50 {
			return !busy, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run executes a host tool; its output goes into the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// FIFREEZE / FITHAW: _IOWR('X', 119/120, int).
const (
	fiFreeze = 0xC0045877
	fiThaw   = 0xC0045878
)

// frozen runs fn while the filesystem mounted at dir is frozen, so a copy
// of its image is consistent.
func frozen(dir string, fn func() error) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fiFreeze, 0); e != 0 {
		return fmt.Errorf("freezing the filesystem at '%s': %w", dir, e)
	}
	err = fn()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fiThaw, 0); e != 0 && err == nil {
		err = fmt.Errorf("thawing the filesystem at '%s': %w", dir, e)
	}
	return err
}

// sparseCopy copies src to a new file dst, leaving zero blocks as holes.
func sparseCopy(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	var size int64
	for {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			if isZero(buf[:n]) {
				_, err = out.Seek(int64(n), io.SeekCurrent)
			} else {
				_, err = out.Write(buf[:n])
			}
			if err != nil {
				out.Close()
				return err
			}
			size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
