package stemcell

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func qcow2Header(virtualSize, backingOffset uint64) []byte {
	h := make([]byte, 512)
	copy(h, qcow2Magic)
	binary.BigEndian.PutUint32(h[4:], 2)
	binary.BigEndian.PutUint32(h[qcow2ClusterBitsAt:], 16)
	binary.BigEndian.PutUint64(h[qcow2BackingOffsetAt:], backingOffset)
	binary.BigEndian.PutUint64(h[qcow2VirtualSizeAt:], virtualSize)
	return h
}

type entry struct {
	name string
	data []byte
}

func writeImage(t *testing.T, gzipped bool, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var gz *gzip.Writer
	if gzipped {
		gz = gzip.NewWriter(&buf)
		w = gz
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if gz != nil {
		gz.Close()
	}
	path := filepath.Join(t.TempDir(), "image")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpen(t *testing.T) {
	qcow := qcow2Header(10<<30, 0)
	raw := bytes.Repeat([]byte{0xab}, 4096)
	cases := []struct {
		name        string
		gzipped     bool
		entries     []entry
		wantFormat  Format
		wantVirtual uint64
		wantData    []byte
		wantErr     bool
	}{
		{"qcow2 in tgz", true, []entry{{"root.img", qcow}}, FormatQcow2, 10 << 30, qcow, false},
		{"raw in tgz after other files", true, []entry{{"README", []byte("x")}, {"./root.img", raw}}, FormatRaw, 4096, raw, false},
		{"plain tar", false, []entry{{"root.img", raw}}, FormatRaw, 4096, raw, false},
		{"no root.img", true, []entry{{"disk.vmdk", raw}}, "", 0, nil, true},
		{"qcow2 with backing file", true, []entry{{"root.img", qcow2Header(1<<30, 512)}}, "", 0, nil, true},
		{"qcow2 of size zero", true, []entry{{"root.img", qcow2Header(0, 0)}}, "", 0, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Open(writeImage(t, tc.gzipped, tc.entries...))
			if tc.wantErr {
				if err == nil {
					img.Close()
					t.Fatal("Open succeeded; want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if img.Format != tc.wantFormat || img.VirtualSize != tc.wantVirtual || img.Size != int64(len(tc.wantData)) {
				t.Fatalf("got format %s virtual %d size %d; want %s %d %d", img.Format, img.VirtualSize, img.Size, tc.wantFormat, tc.wantVirtual, len(tc.wantData))
			}
			got, err := io.ReadAll(img.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.wantData) {
				t.Fatalf("stream yields %d bytes that differ from root.img's %d", len(got), len(tc.wantData))
			}
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
}

func TestPropsCheck(t *testing.T) {
	cases := []struct {
		props Props
		ok    bool
	}{
		{Props{Infrastructure: "openstack", Hypervisor: "kvm", DiskFormat: "qcow2", Architecture: "x86_64"}, true},
		{Props{DiskFormat: "raw"}, true},
		{Props{}, true},
		{Props{Infrastructure: "vsphere", DiskFormat: "ovf"}, false},
		{Props{Infrastructure: "warden"}, false},
		{Props{Architecture: "arm64"}, false},
	}
	for _, tc := range cases {
		if err := tc.props.Check(); (err == nil) != tc.ok {
			t.Errorf("Check(%+v) = %v; want ok=%v", tc.props, err, tc.ok)
		}
	}
}

func TestPropsAgrees(t *testing.T) {
	cases := []struct {
		claimed string
		actual  Format
		ok      bool
	}{
		{"qcow2", FormatQcow2, true},
		{"raw", FormatRaw, true},
		{"", FormatRaw, true},
		{"", FormatQcow2, true},
		{"qcow2", FormatRaw, false},
		{"raw", FormatQcow2, false},
	}
	for _, tc := range cases {
		if err := (Props{DiskFormat: tc.claimed}).Agrees(tc.actual); (err == nil) != tc.ok {
			t.Errorf("Props{DiskFormat: %q}.Agrees(%s) = %v; want ok=%v", tc.claimed, tc.actual, err, tc.ok)
		}
	}
}
