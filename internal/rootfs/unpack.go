// Package rootfs makes containers' root filesystems on the local host: a
// stemcell's root filesystem tar unpacked into a directory, a per-VM
// copy-on-write overlay on it, and files written into a root without
// following its symlinks out of it. Every path inside a root is resolved
// by the kernel with RESOLVE_IN_ROOT, so an image's absolute or '..'
// symlinks can never reach the host's files.
package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Unpack extracts the plain tar stream r into dir, which must exist and
// be empty: files, directories, symlinks, hard links, device nodes and
// FIFOs with their modes, owners and modification times (it needs root,
// as the lxc driver's containers do).
func Unpack(r io.Reader, dir string) error {
	root, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	tr := tar.NewReader(r)
	var dirs []*tar.Header // modes and times of directories, applied last
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the root filesystem tar: %w", err)
		}
		name := clean(h.Name)
		if name == "" {
			continue // the root itself
		}
		if err := unpackEntry(root, name, h, tr); err != nil {
			return fmt.Errorf("unpacking '%s' into '%s': %w", h.Name, dir, err)
		}
		if h.Typeflag == tar.TypeDir {
			dirs = append(dirs, h)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setAttrs(root, clean(dirs[i].Name), dirs[i]); err != nil {
			return fmt.Errorf("unpacking '%s' into '%s': %w", dirs[i].Name, dir, err)
		}
	}
	return nil
}

// clean makes a tar name relative to the root ("" for the root itself).
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func openRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening root directory '%s': %w", dir, err)
	}
	return fd, nil
}

// openIn opens name below root, resolved as if root were '/'.
func openIn(root int, name string, flags int) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	if name == "" {
		name = "."
	}
	return unix.Openat2(root, name, how)
}

// parentOf opens the directory that holds name, creating missing
// directories on the way (a tar may list a file before its directory).
func parentOf(root int, name string) (int, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if err := mkdirAll(root, dir); err != nil {
		return -1, "", err
	}
	fd, err := openIn(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, "", fmt.Errorf("opening directory '/%s': %w", dir, err)
	}
	return fd, base, nil
}

// mkdirAll makes every directory of rel below root that is missing.
func mkdirAll(root int, rel string) error {
	if rel == "" {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		fd, err := openIn(root, sub, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("opening directory '/%s': %w", sub, err)
		}
		parent, err := openIn(root, strings.Join(parts[:i], "/"), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("opening directory of '/%s': %w", sub, err)
		}
		err = unix.Mkdirat(parent, parts[i], 0o755)
		unix.Close(parent)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("creating directory '/%s': %w", sub, err)
		}
	}
	return nil
}

func unpackEntry(root int, name string, h *tar.Header, body io.Reader) error {
	if h.Typeflag == tar.TypeDir {
		return mkdirAll(root, name)
	}
	parent, base, err := parentOf(root, name)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	// A later entry replaces an earlier one, as tar does.
	if err := unix.Unlinkat(parent, base, 0); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EISDIR) {
		return err
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if err := writeAt(parent, base, body, 0o600); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, parent, base); err != nil {
			return err
		}
	case tar.TypeLink:
		target := clean(h.Linkname)
		tparent, tbase, err := parentOf(root, target)
		if err != nil {
			return err
		}
		err = unix.Linkat(tparent, tbase, parent, base, 0)
		unix.Close(tparent)
		if err != nil {
			return fmt.Errorf("hard link to '%s': %w", h.Linkname, err)
		}
		return nil // the target's attributes are the link's
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		if err := unix.Mknodat(parent, base, mode|0o600, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
			return err
		}
	default:
		return nil // pax/GNU metadata entries and others carry no file
	}
	return setAttrsAt(parent, base, h)
}

// writeAt creates base in dir (never following a symlink there) with the
// content of r.
func writeAt(dir int, base string, r io.Reader, mode uint32) error {
	fd, err := unix.Openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func setAttrs(root int, name string, h *tar.Header) error {
	parent, base, err := parentOf(root, name)
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	return setAttrsAt(parent, base, h)
}

// setAttrsAt gives base in dir the entry's owner, mode and mtime; a
// symlink's mode is not its own to set.
func setAttrsAt(dir int, base string, h *tar.Header) error {
	if err := unix.Fchownat(dir, base, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	if h.Typeflag != tar.TypeSymlink {
		// chown clears set-id bits: the mode comes after it.
		if err := unix.Fchmodat(dir, base, uint32(h.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("mode: %w", err)
		}
	}
	mtime := unix.NsecToTimespec(h.ModTime.UnixNano())
	if err := unix.UtimesNanoAt(dir, base, []unix.Timespec{mtime, mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("times: %w", err)
	}
	return nil
}

// WriteFile writes data to name inside the root dir with mode, creating
// its missing directories; a symlink on the way resolves inside the root.
func WriteFile(dir, name string, data []byte, mode uint32) error {
	root, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	parent, base, err := parentOf(root, clean(name))
	if err != nil {
		return fmt.Errorf("writing '%s' in '%s': %w", name, dir, err)
	}
	defer unix.Close(parent)
	tmp := base + ".tmp-cpi"
	_ = unix.Unlinkat(parent, tmp, 0)
	if err := writeAt(parent, tmp, strings.NewReader(string(data)), mode); err != nil {
		return fmt.Errorf("writing '%s' in '%s': %w", name, dir, err)
	}
	// Replaced whole: a guest reading it never sees half a file.
	if err := unix.Renameat(parent, tmp, parent, base); err != nil {
		return fmt.Errorf("writing '%s' in '%s': %w", name, dir, err)
	}
	return nil
}

// MkdirAll makes the directory name inside the root dir.
func MkdirAll(dir, name string) error {
	root, err := openRoot(dir)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	if err := mkdirAll(root, clean(name)); err != nil {
		return fmt.Errorf("in root '%s': %w", dir, err)
	}
	return nil
}
