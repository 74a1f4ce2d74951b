// Package stemcell reads stemcell images, the `image` tgz of a stemcell, one
// file per stemcell format: OpenStack/KVM (openstack.go: root.img, qcow2 or
// raw) and vSphere (vsphere.go: an OVF and the streamOptimized VMDK it
// names) and warden (warden.go: the tarball is a root filesystem). Open sniffs which one a tarball holds, among the formats a runtime
// accepts. It streams: nothing is unpacked to disk.
package stemcell

import (
	"io"
	"regexp"

	"github.com/google/uuid"
)

var cidPattern = regexp.MustCompile(`^sc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// NewCID makes a fresh stemcell CID.
func NewCID() string { return "sc-" + uuid.NewString() }

// ValidCID tells whether cid has the shape of a stemcell CID this CPI made.
func ValidCID(cid string) bool { return cidPattern.MatchString(cid) }

// Format of the stemcell's disk image, as qemu-img and libvirt name it.
type Format string

const (
	FormatQcow2 Format = "qcow2"
	FormatRaw   Format = "raw"
	// FormatVMDK is a streamOptimized VMDK (vSphere stemcells): the runtime
	// converts it, it cannot be a backing file as it is.
	FormatVMDK Format = "vmdk"
	// FormatRootfsTar is a tarball of a root filesystem (warden stemcells),
	// gzipped or not: container runtimes unpack or import it.
	FormatRootfsTar Format = "rootfs-tar"
)

// Firmware the stemcell's disk boots with.
type Firmware string

const (
	// FirmwareBIOS: OpenStack stemcells (MBR, SeaBIOS), and OVFs that say bios.
	FirmwareBIOS Firmware = "bios"
	// FirmwareEFI: vSphere stemcells since 2024; the OVF says so.
	FirmwareEFI Firmware = "efi"
)

// Stemcell formats, as stemcell.MF's stemcell_formats and the CPI's info
// name them.
const (
	StemcellOpenStackQcow2 = "openstack-qcow2"
	StemcellOpenStackRaw   = "openstack-raw"
	StemcellVSphereOVF     = "vsphere-ovf"
	StemcellGeneralOVF     = "general-ovf"
	StemcellWardenTar      = "warden-tar"
	StemcellGeneralTar     = "general-tar"
)

// OpenStackFormats and VSphereFormats are the stemcell formats each reader
// of this package takes.
var (
	OpenStackFormats = []string{StemcellOpenStackQcow2, StemcellOpenStackRaw}
	VSphereFormats   = []string{StemcellVSphereOVF, StemcellGeneralOVF}
	WardenFormats    = []string{StemcellWardenTar, StemcellGeneralTar}
)

// Image is the stemcell's disk image as a stream, positioned at its first
// byte: root.img of an OpenStack stemcell, the VMDK of a vSphere one, the
// whole image tarball of a warden one.
type Image struct {
	// StemcellFormat is the stemcell format the tarball was read as:
	// openstack-qcow2, openstack-raw, vsphere-ovf or warden-tar.
	StemcellFormat string
	Format         Format
	// Firmware the disk boots with: bios unless the OVF says efi.
	Firmware Firmware
	// Size is the number of bytes Reader yields.
	Size int64
	// VirtualSize is the disk size the guest sees, in bytes.
	VirtualSize uint64
	Reader      io.Reader
	closer      io.Closer
}

// Close releases the underlying file.
func (i *Image) Close() error {
	if i.closer == nil {
		return nil
	}
	return i.closer.Close()
}
