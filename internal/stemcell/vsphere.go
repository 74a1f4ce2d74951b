package stemcell

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
)

// openVSphere reads the OVF where the pass stands, then streams the VMDK it
// names. A VMDK that came before the OVF is reached by a second pass from
// the tarball's start (decompressing what lies before it again): the OVF
// alone says which file is the disk.
func openVSphere(p *pass, open opener, ovfName string, before map[string]bool, accepted []string) (*Image, error) {
	desc, err := parseOVF(p.tr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ovfName, err)
	}
	if before[desc.Href] {
		second, err := startPass(open)
		if err != nil {
			return nil, err
		}
		p.file.Close()
		*p = *second
	}
	for {
		hdr, err := p.next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s names the disk file '%s', which the image tarball does not hold", ovfName, desc.Href)
		}
		if err != nil {
			return nil, err
		}
		if path.Clean(hdr.Name) != desc.Href {
			continue
		}
		if desc.Size >= 0 && desc.Size != hdr.Size {
			return nil, fmt.Errorf("%s gives '%s' %d bytes; the image tarball holds %d", ovfName, desc.Href, desc.Size, hdr.Size)
		}
		img, err := describeVMDK(p.tr, hdr.Size, desc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", desc.Href, err)
		}
		img.StemcellFormat = StemcellVSphereOVF
		if !slices.Contains(accepted, StemcellVSphereOVF) {
			img.StemcellFormat = StemcellGeneralOVF
		}
		img.closer = p.file
		return img, nil
	}
}

// describeVMDK peeks at the VMDK's header and embedded descriptor, which
// must pass checkVMDK and agree with the OVF's capacity.
func describeVMDK(r io.Reader, size int64, desc ovfDescriptor) (*Image, error) {
	if size < vmdkHeaderSize {
		return nil, fmt.Errorf("the VMDK is %d bytes, shorter than its header", size)
	}
	buffered := bufio.NewReaderSize(r, vmdkMaxHeaderArea)
	head, err := buffered.Peek(vmdkHeaderSize)
	if err != nil {
		return nil, fmt.Errorf("reading the VMDK header: %w", err)
	}
	if string(head[:4]) == vmdkMagic {
		if head, err = buffered.Peek(vmdkHeaderArea(head, size)); err != nil {
			return nil, fmt.Errorf("reading the VMDK header: %w", err)
		}
	}
	capacity, err := checkVMDK(head)
	if err != nil {
		return nil, err
	}
	if capacity != desc.Capacity {
		return nil, fmt.Errorf("the VMDK's capacity is %d bytes, the OVF's %d: the OVF does not describe this disk", capacity, desc.Capacity)
	}
	return &Image{
		Format:      FormatVMDK,
		Firmware:    desc.Firmware,
		Size:        size,
		VirtualSize: capacity,
		Reader:      io.LimitReader(buffered, size),
	}, nil
}
