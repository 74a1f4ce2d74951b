package rootfs

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type entry struct {
	h    tar.Header
	body string
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.h
		h.Size = int64(len(e.body))
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return &buf
}

// An image's symlinks resolve inside the root: an absolute or '..' link
// used as a directory on the way never writes outside it.
func TestUnpackStaysInsideTheRoot(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	img := tarOf(t,
		entry{h: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
		entry{h: tar.Header{Typeflag: tar.TypeReg, Name: "etc/hostname", Mode: 0o644}, body: "stemcell\n"},
		entry{h: tar.Header{Typeflag: tar.TypeSymlink, Name: "abs", Linkname: "/etc"}},
		entry{h: tar.Header{Typeflag: tar.TypeSymlink, Name: "up", Linkname: "../../../../etc"}},
		entry{h: tar.Header{Typeflag: tar.TypeReg, Name: "abs/escaped", Mode: 0o644}, body: "x"},
		entry{h: tar.Header{Typeflag: tar.TypeReg, Name: "up/escaped2", Mode: 0o644}, body: "x"},
		entry{h: tar.Header{Typeflag: tar.TypeReg, Name: "../../dotdot", Mode: 0o644}, body: "x"},
		entry{h: tar.Header{Typeflag: tar.TypeLink, Name: "etc/hostname2", Linkname: "etc/hostname"}},
		entry{h: tar.Header{Typeflag: tar.TypeReg, Name: "sbin/init", Mode: 0o4755}, body: "#!/bin/sh\n"},
		entry{h: tar.Header{Typeflag: tar.TypeDir, Name: "ro/", Mode: 0o555}},
		entry{h: tar.Header{Typeflag: tar.TypeReg, Name: "ro/f", Mode: 0o444}, body: "r"},
	)
	if err := Unpack(img, root); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the root: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(root)), "dotdot")); err == nil {
		t.Error("'../../dotdot' escaped the root")
	}
	for _, rel := range []string{"dotdot", "etc/escaped", "etc/escaped2"} {
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			t.Errorf("%s not inside the root: %v", rel, err)
		}
	}
	st, err := os.Stat(filepath.Join(root, "sbin/init"))
	if err != nil || st.Mode()&os.ModeSetuid == 0 || st.Mode().Perm() != 0o755 || st.ModTime().Unix() != 1700000000 {
		t.Errorf("sbin/init: %v %v", st, err)
	}
	a, _ := os.Stat(filepath.Join(root, "etc/hostname"))
	b, _ := os.Stat(filepath.Join(root, "etc/hostname2"))
	if !os.SameFile(a, b) {
		t.Error("the hard link is not one file with its target")
	}
	if st, _ := os.Stat(filepath.Join(root, "ro")); st.Mode().Perm() != 0o555 {
		t.Errorf("ro mode %v: a directory's mode is applied after its files", st.Mode())
	}
	if err := WriteFile(root, "/abs/settings.json", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/settings.json")); err != nil {
		t.Errorf("WriteFile through /abs did not land in the root's /etc: %v", err)
	}
	// A link to a directory only the host has: refused, nothing outside.
	err = Unpack(tarOf(t,
		entry{h: tar.Header{Typeflag: tar.TypeSymlink, Name: "host", Linkname: outside}},
		entry{h: tar.Header{Typeflag: tar.TypeReg, Name: "host/escaped", Mode: 0o644}, body: "x"},
	), root)
	if entries, _ := os.ReadDir(outside); err == nil || len(entries) != 0 {
		t.Errorf("a link to the host's %s: Unpack = %v, outside holds %v; want an error and nothing there", outside, err, entries)
	}
}

// The overlay is copy-on-write: a container's writes land in its own
// layer, the stemcell's files stay as they were, and the layer outlives
// an unmount.
func TestOverlayIsCopyOnWrite(t *testing.T) {
	lower := t.TempDir()
	os.WriteFile(filepath.Join(lower, "f"), []byte("stemcell"), 0o644)
	vmDir := filepath.Join(t.TempDir(), "vm")
	if err := Mount(lower, vmDir); err != nil {
		t.Fatal(err)
	}
	defer Unmount(vmDir)
	if err := Mount(lower, vmDir); err != nil {
		t.Fatalf("mounting again: %v", err)
	}
	if err := WriteFile(Root(vmDir), "f", []byte("vm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(lower, "f")); string(got) != "stemcell" {
		t.Errorf("stemcell file changed to %q", got)
	}
	if err := Unmount(vmDir); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := IsMounted(Root(vmDir)); mounted {
		t.Error("still mounted")
	}
	if got, _ := os.ReadFile(filepath.Join(Upper(vmDir), "f")); string(got) != "vm" {
		t.Errorf("the writable layer holds %q", got)
	}
	if err := Remove(vmDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vmDir); !os.IsNotExist(err) {
		t.Errorf("container directory left: %v", err)
	}
}
