package stemcell

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// Open reads the image tarball of an OpenStack stemcell (root.img), the
// only format it took before the vSphere one; see OpenFormats.
func Open(imagePath string) (*Image, error) {
	return OpenFormats(imagePath, OpenStackFormats)
}

// OpenFormats sniffs which stemcell format the image tarball at imagePath
// holds (root.img: openstack-*; an .ovf: vsphere-ovf, general-ovf), refuses
// one the runtime does not accept, and returns the disk image as a stream
// with its format, sizes and firmware. It reads only the tar headers it must
// skip, the OVF and the disk's header: nothing is unpacked to disk.
func OpenFormats(imagePath string, accepted []string) (*Image, error) {
	if _, err := os.Stat(imagePath); err != nil {
		return nil, fmt.Errorf("opening stemcell image '%s': %w", imagePath, err)
	}
	open := func() (io.ReadCloser, error) { return os.Open(imagePath) }
	img, err := openFrom(open, accepted)
	if err != nil {
		return nil, fmt.Errorf("reading stemcell image '%s': %w", imagePath, err)
	}
	return img, nil
}

// opener opens the image tarball at its first byte; a vSphere tarball whose
// VMDK comes before its OVF (tar's alphabetical order: image-disk1.vmdk,
// image.mf, image.ovf) is read twice.
type opener func() (io.ReadCloser, error)

// pass is one read of the image tarball, from its start.
type pass struct {
	file io.ReadCloser
	tr   *tar.Reader
}

func startPass(open opener) (*pass, error) {
	f, err := open()
	if err != nil {
		return nil, fmt.Errorf("opening the image tarball: %w", err)
	}
	archive, err := decompressed(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pass{file: f, tr: tar.NewReader(archive)}, nil
}

// next returns the next regular file's header, io.EOF at the end.
func (p *pass) next() (*tar.Header, error) {
	for {
		hdr, err := p.tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("reading the image tarball: %w", err)
		}
		if hdr.Typeflag == tar.TypeReg {
			return hdr, nil
		}
	}
}

// openFrom sniffs the format from the first file that tells it.
func openFrom(open opener, accepted []string) (*Image, error) {
	p, err := startPass(open)
	if err != nil {
		return nil, err
	}
	img, err := sniff(p, open, accepted)
	if err != nil {
		p.file.Close()
		return nil, err
	}
	return img, nil
}

func sniff(p *pass, open opener, accepted []string) (*Image, error) {
	before := map[string]bool{}
	for {
		hdr, err := p.next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("no %s (openstack-qcow2, openstack-raw), .ovf (vsphere-ovf, general-ovf) nor root filesystem (warden-tar, general-tar) in the image tarball: not a stemcell image this CPI reads (it takes %s)",
				rootImageName, strings.Join(accepted, ", "))
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean(hdr.Name)
		switch {
		case name == rootImageName:
			if !acceptsAny(accepted, OpenStackFormats) {
				return nil, refused("root.img, an OpenStack stemcell", accepted)
			}
			return openOpenStack(p, hdr.Size, accepted)
		case path.Ext(name) == ".ovf" && path.Dir(name) == ".":
			if !acceptsAny(accepted, VSphereFormats) {
				return nil, refused(name+", a vSphere stemcell", accepted)
			}
			return openVSphere(p, open, name, before, accepted)
		case isRootfsEntry(name):
			if !acceptsAny(accepted, WardenFormats) {
				return nil, refused("a root filesystem, a warden stemcell", accepted)
			}
			return openWarden(p, open, accepted)
		}
		before[name] = true
	}
}

func refused(what string, accepted []string) error {
	return fmt.Errorf("the image tarball holds %s; this runtime takes only %s stemcells", what, strings.Join(accepted, ", "))
}

func acceptsAny(accepted, formats []string) bool {
	for _, f := range formats {
		if slices.Contains(accepted, f) {
			return true
		}
	}
	return false
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

// Props are the stemcell.MF cloud_properties this runtime reads. Other keys
// (name, version, os_type, ...) are descriptive and accepted as they are.
type Props struct {
	Infrastructure string `json:"infrastructure"`
	Hypervisor     string `json:"hypervisor"`
	DiskFormat     string `json:"disk_format"`
	Architecture   string `json:"architecture"`
}

// Check tells whether an OpenStack stemcell with these properties can run
// on QEMU; see CheckAccepting.
func (p Props) Check() error { return p.CheckAccepting(OpenStackFormats) }

// CheckAccepting tells whether a stemcell with these properties is one of
// the accepted stemcell formats, on x86_64.
func (p Props) CheckAccepting(accepted []string) error {
	openstack, vsphere := acceptsAny(accepted, OpenStackFormats), acceptsAny(accepted, VSphereFormats)
	warden := acceptsAny(accepted, WardenFormats)
	switch {
	case p.DiskFormat == "":
	case openstack && (p.DiskFormat == "qcow2" || p.DiskFormat == "raw"):
	case vsphere && p.DiskFormat == "vmdk":
	// Warden stemcells (bosh-lite's) say "files": the image is a tree.
	case warden && p.DiskFormat == "files":
	default:
		return fmt.Errorf("stemcell disk_format '%s' is not supported: use a stemcell of format %s", p.DiskFormat, strings.Join(accepted, ", "))
	}
	switch p.Infrastructure {
	case "":
	case "openstack", "libvirt", "qemu", "kvm":
		if !openstack {
			return fmt.Errorf("stemcell infrastructure '%s' (an OpenStack stemcell) is not supported: use a stemcell of format %s", p.Infrastructure, strings.Join(accepted, ", "))
		}
	case "vsphere", "vcloud", "virtualbox":
		if !vsphere {
			return fmt.Errorf("stemcell infrastructure '%s' (a vSphere stemcell) is not supported: use a stemcell of format %s", p.Infrastructure, strings.Join(accepted, ", "))
		}
	case "warden", "docker", "lxc":
		if !warden {
			return fmt.Errorf("stemcell infrastructure '%s' (a warden stemcell, a root filesystem) is not supported: use a stemcell of format %s", p.Infrastructure, strings.Join(accepted, ", "))
		}
	default:
		return fmt.Errorf("stemcell infrastructure '%s' is not supported: use a stemcell of format %s", p.Infrastructure, strings.Join(accepted, ", "))
	}
	switch p.Architecture {
	case "", "x86_64", "amd64":
	default:
		return fmt.Errorf("stemcell architecture '%s' is not supported on this host: only x86_64", p.Architecture)
	}
	return nil
}

// Agrees tells whether the disk image is in the format stemcell.MF claims.
// A qcow2 stemcell whose image has no qcow2 header is corrupt or truncated;
// imported as raw it would only fail later, as a VM that never boots.
func (p Props) Agrees(format Format) error {
	if p.DiskFormat == "" || Format(p.DiskFormat) == format || (p.DiskFormat == "files" && format == FormatRootfsTar) {
		return nil
	}
	if Format(p.DiskFormat) == FormatQcow2 {
		return fmt.Errorf("stemcell.MF says disk_format qcow2 but %s has no qcow2 header: the image is corrupt or not a qcow2 stemcell", rootImageName)
	}
	return fmt.Errorf("stemcell.MF says disk_format %s but the image is %s", p.DiskFormat, format)
}
