// Package lock gives cross-process mutual exclusion through flock(2) on
// files under a directory. Every CPI call is its own process and the
// director runs many at once, so in-process mutexes protect nothing.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/sys/unix"
)

// Dir hands out locks named by object (a CID, "pool", ...).
type Dir struct {
	path string
}

// NewDir uses (and creates) path for lock files.
func NewDir(path string) Dir { return Dir{path: path} }

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Lock blocks until it holds the exclusive lock on name or ctx ends. The
// returned func releases it. The kernel drops the lock if the process dies,
// so a crashed call never wedges the next one.
//
// The file is removed on release, so that one file per CID ever touched
// does not stay behind. A waiter may then hold a lock on a file that is no
// longer the one at the path (or on nothing at the path): after locking it
// checks that the path still names the file it locked, and starts again
// with the new file when it does not.
func (d Dir) Lock(ctx context.Context, name string) (func(), error) {
	if !safeName.MatchString(name) {
		return nil, fmt.Errorf("lock name '%s' is not a safe file name", name)
	}
	if err := d.ensure(); err != nil {
		return nil, err
	}
	file := filepath.Join(d.path, name+".lock")
	for {
		f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening lock file '%s': %w", file, err)
		}
		if err := acquire(ctx, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking '%s': %w", name, err)
		}
		if stillAtPath(f, file) {
			return func() {
				// Remove while still holding the lock: whoever opens the
				// path next makes a new file, and whoever waits on this
				// one sees it gone and starts again.
				_ = os.Remove(file)
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		f.Close()
	}
}

// stillAtPath tells whether path names the open file f (same inode).
func stillAtPath(f *os.File, path string) bool {
	held, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(held, now)
}

// ensure creates the lock directory. Its parent is store_dir, which also
// holds the storage pool QEMU reads from: it must stay enterable by other
// users (0755), so it is created here with that mode if it is missing;
// only the lock directory itself is private.
func (d Dir) ensure() error {
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return fmt.Errorf("creating directory '%s': %w", filepath.Dir(d.path), err)
	}
	if err := os.Mkdir(d.path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating lock directory '%s': %w", d.path, err)
	}
	return nil
}

// acquire polls a non-blocking flock so that ctx can cancel the wait;
// a blocking flock cannot be interrupted from Go.
func acquire(ctx context.Context, f *os.File) error {
	delay := 2 * time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for lock: %w", ctx.Err())
		case <-time.After(delay):
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}
