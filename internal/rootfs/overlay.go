package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Layout of a container's directory: the writable layer, overlayfs's work
// directory and the merged root the container sees.
const (
	upperName  = "upper"
	workName   = "work"
	mergedName = "rootfs"
)

// Root is the merged root directory of the container directory vmDir.
func Root(vmDir string) string { return filepath.Join(vmDir, mergedName) }

// Upper is the container's own writable layer: what it changed.
func Upper(vmDir string) string { return filepath.Join(vmDir, upperName) }

// Mount mounts the overlay of the read-only stemcell root lower under a
// writable layer of vmDir's own at Root(vmDir): copy-on-write, so a new
// container costs the same for a small and a large root filesystem, and
// the stemcell's files are shared. The layer stays across unmounts (a
// restarted container keeps its state). Mounting what is mounted is a
// no-op.
func Mount(lower, vmDir string) error {
	for _, name := range []string{upperName, workName, mergedName} {
		if err := os.MkdirAll(filepath.Join(vmDir, name), 0o755); err != nil {
			return fmt.Errorf("creating container directory: %w", err)
		}
	}
	merged := Root(vmDir)
	if mounted, err := IsMounted(merged); err != nil || mounted {
		return err
	}
	for _, p := range []string{lower, vmDir} {
		// overlayfs splits its options on ',' and lowerdir on ':'.
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("overlay of '%s': path '%s' holds ',' or ':', which overlayfs options cannot carry", merged, p)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, Upper(vmDir), filepath.Join(vmDir, workName))
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting the overlay of '%s' at '%s' (needs root and overlayfs): %w", lower, merged, err)
	}
	return nil
}

// Unmount unmounts Root(vmDir); nothing mounted is no error.
func Unmount(vmDir string) error {
	merged := Root(vmDir)
	err := unix.Unmount(merged, 0)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmounting '%s': %w", merged, err)
}

// Remove unmounts and deletes the container directory vmDir.
func Remove(vmDir string) error {
	if err := Unmount(vmDir); err != nil {
		return err
	}
	if err := os.RemoveAll(vmDir); err != nil {
		return fmt.Errorf("removing container directory '%s': %w", vmDir, err)
	}
	return nil
}

// IsMounted tells whether dir is the root of a mount: on another device
// than its parent.
func IsMounted(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("checking mount '%s': %w", dir, err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &parent); err != nil {
		return false, fmt.Errorf("checking mount '%s': %w", dir, err)
	}
	return st.Dev != parent.Dev, nil
}
