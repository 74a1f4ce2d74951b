package stemcell

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

func TestOpenWarden(t *testing.T) {
	rootfs := []entry{{"./etc/os-release", []byte("ID=debian\n")}, {"./sbin/init", []byte("#!/bin/sh\n")}}
	cases := []struct {
		name       string
		gzipped    bool
		entries    []entry
		accepted   []string
		wantFormat string
		wantErr    string
	}{
		{"gzipped rootfs", true, rootfs, WardenFormats, StemcellWardenTar, ""},
		{"plain rootfs", false, rootfs, WardenFormats, StemcellWardenTar, ""},
		{"only general-tar accepted", true, rootfs, []string{StemcellGeneralTar}, StemcellGeneralTar, ""},
		{"top-level files first", true, append([]entry{{"./README", []byte("x")}}, rootfs...), WardenFormats, StemcellWardenTar, ""},
		{"rootfs on a VM runtime", true, rootfs, OpenStackFormats, "", "a root filesystem, a warden stemcell"},
		{"root.img on a container runtime", true, []entry{{"root.img", qcow2Header(1<<30, 0)}}, WardenFormats, "", "takes only warden-tar, general-tar"},
		{"no rootfs directory", true, []entry{{"./README", []byte("x")}, {"./doc/a", []byte("y")}}, WardenFormats, "", "nor root filesystem"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeImage(t, tc.gzipped, tc.entries...)
			img, data, err := openAll(t, path, tc.accepted)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("OpenFormats = %v; want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			whole, _ := os.ReadFile(path)
			if img.StemcellFormat != tc.wantFormat || img.Format != FormatRootfsTar || img.Size != int64(len(whole)) {
				t.Fatalf("image = %s/%s of %d bytes; want %s/%s of %d", img.StemcellFormat, img.Format, img.Size, tc.wantFormat, FormatRootfsTar, len(whole))
			}
			if !bytes.Equal(data, whole) {
				t.Fatalf("stream yields %d bytes that are not the image tarball's %d", len(data), len(whole))
			}
			plain, err := Decompressed(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			untarred, _ := io.ReadAll(plain)
			if !bytes.Contains(untarred, []byte("ID=debian")) {
				t.Fatal("Decompressed does not yield the rootfs tar")
			}
		})
	}
}

func TestPropsCheckAcceptingWarden(t *testing.T) {
	cases := []struct {
		props    Props
		accepted []string
		ok       bool
	}{
		{Props{Infrastructure: "warden", DiskFormat: "files", Architecture: "x86_64"}, WardenFormats, true},
		{Props{Infrastructure: "warden"}, OpenStackFormats, false},
		{Props{DiskFormat: "files"}, OpenStackFormats, false},
		{Props{Infrastructure: "openstack", DiskFormat: "qcow2"}, WardenFormats, false},
		{Props{DiskFormat: "vmdk"}, WardenFormats, false},
	}
	for _, tc := range cases {
		if err := tc.props.CheckAccepting(tc.accepted); (err == nil) != tc.ok {
			t.Errorf("CheckAccepting(%+v, %v) = %v; want ok=%v", tc.props, tc.accepted, err, tc.ok)
		}
	}
	if err := (Props{DiskFormat: "files"}).Agrees(FormatRootfsTar); err != nil {
		t.Errorf("disk_format files disagrees with a rootfs tarball: %v", err)
	}
	if err := (Props{DiskFormat: "qcow2"}).Agrees(FormatRootfsTar); err == nil {
		t.Error("disk_format qcow2 agrees with a rootfs tarball")
	}
}
