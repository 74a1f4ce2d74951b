package stemcell

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// FuzzOpenFrom feeds arbitrary image tarballs (plain or gzipped, with any
// root.img header) to the parser: it must answer an image or an error,
// never panic, and a qcow2 answer must have passed the header checks.
func FuzzOpenFrom(f *testing.F) {
	for _, seed := range [][]byte{
		tarOf("root.img", qcow2Header(10<<30, 0)),
		tarOf("root.img", qcow2Header(1<<30, 512)),
		tarOf("root.img", qcow2Header(0, 0)),
		tarOf("root.img", []byte("QFI\xfb")),
		tarOf("root.img", bytes.Repeat([]byte{0}, 1024)),
		tarOf("other", []byte("x")),
		{0x1f, 0x8b, 0x08},
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := openFrom(bytes.NewReader(data))
		if err != nil {
			return
		}
		if img.Format == FormatQcow2 && img.VirtualSize == 0 {
			t.Fatalf("qcow2 image of virtual size 0 accepted")
		}
		if n, err := io.Copy(io.Discard, img.Reader); err == nil && n > img.Size {
			t.Fatalf("read %d bytes of a root.img of %d", n, img.Size)
		}
	})
}

func tarOf(name string, data []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(data)
	_ = tw.Close()
	return buf.Bytes()
}

// FuzzCheckQcow2 feeds arbitrary qcow2 header areas (the corpus holds the
// first KiB of images qemu-img made: plain, compat 0.10, with a backing
// file, with an external data file) to the header check: it must answer a
// size or an error, never panic, and an accepted header names no backing
// file nor external data file, and is refused once its data file bit is set.
func FuzzCheckQcow2(f *testing.F) {
	for _, seed := range [][]byte{
		qcow2Header(10<<30, 0),
		qcow2Header(1<<30, 512),
		[]byte("QFI\xfb\x00\x00\x00\x03"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		size, err := checkQcow2(head)
		if err != nil {
			return
		}
		if size == 0 {
			t.Fatal("virtual size 0 accepted")
		}
		if binary.BigEndian.Uint64(head[qcow2BackingOffsetAt:]) != 0 {
			t.Fatal("a backing file accepted")
		}
		if binary.BigEndian.Uint32(head[qcow2VersionAt:]) != 3 {
			return
		}
		if binary.BigEndian.Uint64(head[qcow2IncompatibleAt:])&qcow2ExternalDataBit != 0 {
			t.Fatal("the external data file bit accepted")
		}
		if _, err := checkQcow2(withIncompatible(head, qcow2ExternalDataBit)); err == nil {
			t.Fatal("accepted with the external data file bit set")
		}
	})
}
