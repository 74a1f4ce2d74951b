package stemcell

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// qemuImg makes a qcow2 image with the real qemu-img, so that the header
// check is tried on the headers QEMU writes and reads, not on ours alone.
func qemuImg(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-img is not installed (scripts/host.sh installs it)")
		}
		t.Skip("qemu-img is not installed")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "root.qcow2")
	args = append([]string{"create", "-q", "-f", "qcow2"}, args...)
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "DIR", dir)
	}
	args = append(args, out)
	if !strings.Contains(strings.Join(args, " "), "-b ") {
		args = append(args, "64M")
	}
	cmd := exec.Command("qemu-img", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v: %s", args, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// withIncompatible returns a copy of a version 3 header with the
// incompatible features set to bits.
func withIncompatible(img []byte, bits uint64) []byte {
	c := append([]byte(nil), img...)
	binary.BigEndian.PutUint64(c[qcow2IncompatibleAt:], bits)
	return c
}

// withoutDataExtension returns a copy of img whose data file extension is
// turned into one of a type QEMU ignores.
func withoutDataExtension(t *testing.T, img []byte) []byte {
	t.Helper()
	c := append([]byte(nil), img...)
	start := int(binary.BigEndian.Uint32(c[qcow2HeaderLengthAt:]))
	if binary.BigEndian.Uint32(c[start:]) != qcow2ExtDataFile {
		t.Fatalf("the first extension of qemu-img's data file image is 0x%08x, not DATA", binary.BigEndian.Uint32(c[start:]))
	}
	binary.BigEndian.PutUint32(c[start:], 0x12345678)
	return c
}

// TestOpenQcow2FromQemuImg: a stemcell whose root.img would make QEMU open
// a host file (an external data file, by its feature bit or by its header
// extension, or a backing file) is refused with the reason and the data
// file's name; the plain images qemu-img makes (compat 1.1 and 0.10) pass.
func TestOpenQcow2FromQemuImg(t *testing.T) {
	dataFile := qemuImg(t, "-o", "data_file=DIR/host-disk.raw")
	cases := []struct {
		name    string
		img     func() []byte
		wantErr []string // substrings of the error; nil means Open succeeds
	}{
		{"plain compat 1.1", func() []byte { return qemuImg(t) }, nil},
		{"plain compat 0.10", func() []byte { return qemuImg(t, "-o", "compat=0.10") }, nil},
		{"plain, clusters of 512 bytes", func() []byte { return qemuImg(t, "-o", "cluster_size=512") }, nil},
		{"plain, clusters of 2 MiB", func() []byte { return qemuImg(t, "-o", "cluster_size=2M") }, nil},
		{"external data file", func() []byte { return dataFile },
			[]string{"external data file", "host-disk.raw\"", "stemcells must be standalone"}},
		{"external raw data file", func() []byte { return qemuImg(t, "-o", "data_file=DIR/raw.img,data_file_raw=on") },
			[]string{"external data file", "raw.img\""}},
		{"data file extension without its feature bit", func() []byte { return withIncompatible(dataFile, 0) },
			[]string{"external data file", "host-disk.raw\""}},
		{"data file feature bit without its extension", func() []byte { return withoutDataExtension(t, dataFile) },
			[]string{"external data file"}},
		{"backing file", func() []byte {
			base := filepath.Join(t.TempDir(), "base.qcow2")
			if err := os.WriteFile(base, qemuImg(t), 0o644); err != nil {
				t.Fatal(err)
			}
			return qemuImg(t, "-b", base, "-F", "qcow2")
		}, []string{"backing file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			imagePath := writeImage(t, true, entry{"root.img", tc.img()})
			img, err := Open(imagePath)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				if img.Format != FormatQcow2 || img.VirtualSize != 64<<20 {
					t.Fatalf("got %s of virtual size %d; want qcow2 of %d", img.Format, img.VirtualSize, 64<<20)
				}
				return
			}
			if err == nil {
				img.Close()
				t.Fatal("Open succeeded; want an error")
			}
			for _, want := range append(tc.wantErr, imagePath, rootImageName) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestCheckQcow2Malformed: headers QEMU would not open either are refused,
// never read past what is there.
func TestCheckQcow2Malformed(t *testing.T) {
	v3 := func(mod func(h []byte)) []byte {
		h := make([]byte, 4096)
		copy(h, qcow2Magic)
		binary.BigEndian.PutUint32(h[qcow2VersionAt:], 3)
		binary.BigEndian.PutUint32(h[qcow2ClusterBitsAt:], 16)
		binary.BigEndian.PutUint64(h[qcow2VirtualSizeAt:], 1<<30)
		binary.BigEndian.PutUint32(h[qcow2HeaderLengthAt:], qcow2V3HeaderSize)
		mod(h)
		return h
	}
	cases := []struct {
		name string
		head []byte
		ok   bool
	}{
		{"minimal version 3", v3(func([]byte) {}), true},
		{"version 4", v3(func(h []byte) { binary.BigEndian.PutUint32(h[qcow2VersionAt:], 4) }), false},
		{"cluster_bits 8", v3(func(h []byte) { binary.BigEndian.PutUint32(h[qcow2ClusterBitsAt:], 8) }), false},
		{"cluster_bits 22", v3(func(h []byte) { binary.BigEndian.PutUint32(h[qcow2ClusterBitsAt:], 22) }), false},
		{"encrypted", v3(func(h []byte) { binary.BigEndian.PutUint32(h[qcow2CryptMethodAt:], 1) }), false},
		{"header_length 72", v3(func(h []byte) { binary.BigEndian.PutUint32(h[qcow2HeaderLengthAt:], 72) }), false},
		{"version 3 cut at 100 bytes", v3(func([]byte) {})[:100], false},
		{"extensions cut before their end", v3(func(h []byte) { binary.BigEndian.PutUint32(h[104:], 0x6803f857) })[:112], false},
		{"extension longer than the header", v3(func(h []byte) {
			binary.BigEndian.PutUint32(h[104:], 0x6803f857)
			binary.BigEndian.PutUint32(h[108:], 0xffffffff)
		}), false},
		{"extensions past the first cluster", v3(func(h []byte) {
			binary.BigEndian.PutUint32(h[qcow2ClusterBitsAt:], 9)
			binary.BigEndian.PutUint32(h[104:], 0x6803f857)
			binary.BigEndian.PutUint32(h[108:], 400)
		}), false},
		{"header_length past the cluster", v3(func(h []byte) {
			binary.BigEndian.PutUint32(h[qcow2ClusterBitsAt:], 9)
			binary.BigEndian.PutUint32(h[qcow2HeaderLengthAt:], 0xfffffff0)
		}), false},
	}
	for _, tc := range cases {
		if _, err := checkQcow2(tc.head); (err == nil) != tc.ok {
			t.Errorf("%s: checkQcow2 = %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}
