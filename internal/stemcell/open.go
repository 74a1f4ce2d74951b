package stemcell

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/klauspost/compress/gzip"
)

// rootImageName is the disk image inside an OpenStack stemcell's image tgz.
const rootImageName = "root.img"

// Open finds root.img in the image tarball at imagePath and returns it as a
// stream with its format and sizes. It reads only the tar headers it must
// skip and the qcow2 header: nothing is unpacked to disk.
func Open(imagePath string) (*Image, error) {
	f, err := os.Open(imagePath)
	if err != nil {
		return nil, fmt.Errorf("opening stemcell image '%s': %w", imagePath, err)
	}
	img, err := openFrom(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading stemcell image '%s': %w", imagePath, err)
	}
	img.closer = f
	return img, nil
}

func openFrom(r io.Reader) (*Image, error) {
	buffered := bufio.NewReaderSize(r, 1<<20)
	archive, err := decompressed(buffered)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(archive)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("no %s in the image tarball (is this an OpenStack/KVM stemcell?)", rootImageName)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image tarball: %w", err)
		}
		if path.Clean(hdr.Name) == rootImageName && hdr.Typeflag == tar.TypeReg {
			return describe(tr, hdr.Size)
		}
	}
}

// decompressed accepts a gzipped or a plain tar.
func decompressed(r *bufio.Reader) (io.Reader, error) {
	magic, err := r.Peek(2)
	if err != nil {
		return nil, fmt.Errorf("image is empty or unreadable: %w", err)
	}
	if magic[0] != 0x1f || magic[1] != 0x8b {
		return r, nil
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("opening gzip stream: %w", err)
	}
	return gz, nil
}

// describe peeks at the start of root.img to tell qcow2 from raw; a qcow2
// header must pass checkQcow2.
func describe(r io.Reader, size int64) (*Image, error) {
	buffered := bufio.NewReaderSize(r, qcow2MaxHeaderArea)
	head, err := buffered.Peek(qcow2MinimumHeaderSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading %s header: %w", rootImageName, err)
	}
	img := &Image{Size: size, Reader: io.LimitReader(buffered, size)}
	if !bytes.HasPrefix(head, []byte(qcow2Magic)) {
		img.Format = FormatRaw
		img.VirtualSize = uint64(size)
		return img, nil
	}
	if len(head) == qcow2MinimumHeaderSize {
		head, err = buffered.Peek(qcow2HeaderArea(head, size))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %s header: %w", rootImageName, err)
		}
	}
	img.Format = FormatQcow2
	if img.VirtualSize, err = checkQcow2(head); err != nil {
		return nil, fmt.Errorf("%s: %w", rootImageName, err)
	}
	return img, nil
}

// Props are the stemcell.MF cloud_properties this runtime reads. Other keys
// (name, version, os_type, ...) are descriptive and accepted as they are.
type Props struct {
	Infrastructure string `json:"infrastructure"`
	Hypervisor     string `json:"hypervisor"`
	DiskFormat     string `json:"disk_format"`
	Architecture   string `json:"architecture"`
}

// Check tells whether a stemcell with these properties can run on QEMU.
func (p Props) Check() error {
	switch p.DiskFormat {
	case "", "qcow2", "raw":
	default:
		return fmt.Errorf("stemcell disk_format '%s' is not supported: use an OpenStack/KVM stemcell (openstack-qcow2 or openstack-raw)", p.DiskFormat)
	}
	switch p.Infrastructure {
	case "", "openstack", "libvirt", "qemu", "kvm":
	default:
		return fmt.Errorf("stemcell infrastructure '%s' is not supported: use an OpenStack/KVM stemcell", p.Infrastructure)
	}
	switch p.Architecture {
	case "", "x86_64", "amd64":
	default:
		return fmt.Errorf("stemcell architecture '%s' is not supported on this host: only x86_64", p.Architecture)
	}
	return nil
}

// Agrees tells whether root.img is in the format stemcell.MF claims. A
// qcow2 stemcell whose image has no qcow2 header is corrupt or truncated;
// imported as raw it would only fail later, as a VM that never boots.
func (p Props) Agrees(format Format) error {
	if p.DiskFormat == "" || Format(p.DiskFormat) == format {
		return nil
	}
	if Format(p.DiskFormat) == FormatQcow2 {
		return fmt.Errorf("stemcell.MF says disk_format qcow2 but %s has no qcow2 header: the image is corrupt or not a qcow2 stemcell", rootImageName)
	}
	return fmt.Errorf("stemcell.MF says disk_format %s but %s is %s", p.DiskFormat, rootImageName, format)
}
