package stemcell

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// A warden stemcell's image is a tarball of a root filesystem (bosh-lite's
// stemcells; the Docker and LXC runtimes run it as a container). Nothing in
// it names the format, so a tarball is taken for a root filesystem when one
// of its files lies under a directory every Linux root has.

// rootfsDirs are the top-level directories that mark a root filesystem.
var rootfsDirs = []string{"bin", "etc", "lib", "lib64", "sbin", "usr", "var"}

// isRootfsEntry tells whether the tar entry name lies in a root filesystem
// directory (./etc/passwd, usr/bin/env, ...).
func isRootfsEntry(name string) bool {
	top, _, nested := strings.Cut(path.Clean(name), "/")
	return nested && slices.Contains(rootfsDirs, top)
}

// openWarden returns the image tarball as it is, from its first byte, for
// the runtime to unpack or import: Docker takes it gzipped or not, others
// read it through Decompressed. The sniffing pass is closed; nothing is
// unpacked here.
func openWarden(p *pass, open opener, accepted []string) (*Image, error) {
	p.file.Close()
	size, err := tarballSize(open)
	if err != nil {
		return nil, err
	}
	f, err := open()
	if err != nil {
		return nil, fmt.Errorf("opening the image tarball: %w", err)
	}
	format := StemcellWardenTar
	if !slices.Contains(accepted, format) {
		format = StemcellGeneralTar
	}
	return &Image{StemcellFormat: format, Format: FormatRootfsTar, Size: size, Reader: f, closer: f}, nil
}

// tarballSize is the image tarball's length: a file's is looked up, any
// other stream's is counted.
func tarballSize(open opener) (int64, error) {
	f, err := open()
	if err != nil {
		return 0, fmt.Errorf("opening the image tarball: %w", err)
	}
	defer f.Close()
	if seeker, ok := f.(io.Seeker); ok {
		size, err := seeker.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, fmt.Errorf("measuring the image tarball: %w", err)
		}
		return size, nil
	}
	size, err := io.Copy(io.Discard, f)
	if err != nil {
		return 0, fmt.Errorf("reading the image tarball: %w", err)
	}
	return size, nil
}

// Decompressed returns the plain tar stream of a root filesystem image
// (gunzipped when it is gzipped).
func Decompressed(r io.Reader) (io.Reader, error) {
	return decompressed(bufio.NewReaderSize(r, 1<<20))
}
