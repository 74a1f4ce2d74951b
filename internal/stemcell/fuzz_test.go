package stemcell

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

// FuzzOpenFrom feeds arbitrary image tarballs (plain or gzipped, with any
// root.img header, or an OVF and a VMDK in either order) to the parser,
// every format accepted: it must answer an image or an error, never panic,
// a qcow2 answer must have passed the header checks, and a VMDK answer is a
// VMDK of the OVF's capacity whose stream yields no more than its size.
func FuzzOpenFrom(f *testing.F) {
	for _, seed := range [][]byte{
		tarOf("root.img", qcow2Header(10<<30, 0)),
		tarOf("root.img", qcow2Header(1<<30, 512)),
		tarOf("root.img", qcow2Header(0, 0)),
		tarOf("root.img", []byte("QFI\xfb")),
		tarOf("root.img", bytes.Repeat([]byte{0}, 1024)),
		tarOf("other", []byte("x")),
		tarOfEntries(entry{"image.ovf", testOVF(ovfSpec{})}, entry{"image-disk1.vmdk", streamVMDK(64 << 20)}),
		tarOfEntries(entry{"image-disk1.vmdk", streamVMDK(64 << 20)}, entry{"image.ovf", testOVF(ovfSpec{})}),
		tarOfEntries(entry{"./etc/os-release", []byte("ID=debian\n")}, entry{"./sbin/init", []byte("#!/bin/sh\n")}),
		{0x1f, 0x8b, 0x08},
		{},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		img, err := openFrom(open, allFormats)
		if err != nil {
			return
		}
		if img.Format == FormatQcow2 && img.VirtualSize == 0 {
			t.Fatalf("qcow2 image of virtual size 0 accepted")
		}
		if img.Format == FormatVMDK {
			head := make([]byte, vmdkMaxHeaderArea)
			n, _ := io.ReadFull(img.Reader, head)
			if size, err := checkVMDK(head[:n]); err != nil || size != img.VirtualSize {
				t.Fatalf("VMDK accepted whose header says %d, %v; the image says %d", size, err, img.VirtualSize)
			}
			img.Size -= int64(n)
		}
		if n, err := io.Copy(io.Discard, img.Reader); err == nil && n > img.Size {
			t.Fatalf("read %d bytes of a root.img of %d", n, img.Size)
		}
	})
}

var allFormats = append(append(append([]string(nil), OpenStackFormats...), VSphereFormats...), WardenFormats...)

func tarOf(name string, data []byte) []byte { return tarOfEntries(entry{name, data}) }

func tarOfEntries(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		_ = tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg})
		_, _ = tw.Write(e.data)
	}
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

// FuzzParseOVF feeds arbitrary OVF descriptors (the corpus holds the
// vSphere test stemcell's image.ovf and one of ovftool's shape) to the
// parser: it must answer a descriptor or an error, never panic, and an
// answer names a VMDK inside the tarball, a capacity above zero and a
// firmware it knows.
func FuzzParseOVF(f *testing.F) {
	for _, seed := range [][]byte{
		testOVF(ovfSpec{}),
		testOVF(ovfSpec{units: "byte * 2^30", capacity: "5", firmware: "bios"}),
		[]byte(ovftoolShapeOVF),
		[]byte("<Envelope/>"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		desc, err := parseOVF(bytes.NewReader(data))
		if err != nil {
			return
		}
		if desc.Capacity == 0 {
			t.Fatal("capacity 0 accepted")
		}
		if desc.Href == "" || strings.HasPrefix(desc.Href, "/") || strings.HasPrefix(desc.Href, "../") || desc.Href == ".." {
			t.Fatalf("href %q outside the tarball accepted", desc.Href)
		}
		if desc.Firmware != FirmwareEFI && desc.Firmware != FirmwareBIOS {
			t.Fatalf("firmware %q", desc.Firmware)
		}
	})
}

// FuzzCheckVMDK feeds arbitrary VMDK header areas (the corpus holds the
// first 64 KiB of streamOptimized VMDKs qemu-img made) to the check: it
// must answer a capacity or an error, never panic, and an accepted header
// is streamOptimized with a descriptor naming no parent.
func FuzzCheckVMDK(f *testing.F) {
	f.Add(streamVMDK(64 << 20))
	f.Add(streamVMDK(1 << 30))
	f.Fuzz(func(t *testing.T, head []byte) {
		size, err := checkVMDK(head)
		if err != nil {
			return
		}
		if size == 0 || size%vmdkSector != 0 {
			t.Fatalf("capacity %d accepted", size)
		}
		desc, err := vmdkDescriptor(head)
		if err != nil {
			t.Fatalf("accepted without a descriptor: %v", err)
		}
		if strings.Contains(desc, "parentFileNameHint") {
			t.Fatal("a parent file accepted")
		}
	})
}
