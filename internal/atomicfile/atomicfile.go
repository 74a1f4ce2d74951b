// Package atomicfile writes files whole or not at all: a CPI process can be
// killed at any instant, and a reader must never find a truncated file.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Write replaces path with data through a temporary file in the same
// directory and a rename, so a kill leaves either the old file or the new
// one, never a part. The temporary file is removed on every failure.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	// The mode is set before the data can be seen under path: a file
	// holding a password is never readable by others, not even briefly.
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Remove deletes path and the temporary files that a Write killed before
// its rename left beside it (".<name>.<digits>"); what is not there is no
// error.
func Remove(path string) error {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(filepath.Clean(dir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range entries {
		if isTemporaryOf(e.Name(), base) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isTemporaryOf tells whether name is one of Write's temporary files for
// base: os.CreateTemp's "*" becomes decimal digits.
func isTemporaryOf(name, base string) bool {
	suffix, ok := strings.CutPrefix(name, "."+base+".")
	if !ok || suffix == "" {
		return false
	}
	for _, r := range suffix {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
