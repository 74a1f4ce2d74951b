package stemcell

import (
	"archive/tar"
	"bytes"
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
