package stemcell

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// rootImageName is the disk image inside an OpenStack stemcell's image tgz.
const rootImageName = "root.img"

// openOpenStack reads root.img, where the pass stands, as the stream the
// image is; qcow2 and raw are told apart by the header.
func openOpenStack(p *pass, size int64, accepted []string) (*Image, error) {
	img, err := describe(p.tr, size)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(accepted, img.StemcellFormat) {
		return nil, refused(fmt.Sprintf("a %s root.img (%s)", img.Format, img.StemcellFormat), accepted)
	}
	img.closer = p.file
	return img, nil
}

// describe peeks at the start of root.img to tell qcow2 from raw; a qcow2
// header must pass checkQcow2.
func describe(r io.Reader, size int64) (*Image, error) {
	buffered := bufio.NewReaderSize(r, qcow2MaxHeaderArea)
	head, err := buffered.Peek(qcow2MinimumHeaderSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading %s header: %w", rootImageName, err)
	}
	img := &Image{Size: size, Reader: io.LimitReader(buffered, size), Firmware: FirmwareBIOS}
	if !bytes.HasPrefix(head, []byte(qcow2Magic)) {
		img.Format, img.StemcellFormat = FormatRaw, StemcellOpenStackRaw
		img.VirtualSize = uint64(size)
		return img, nil
	}
	if len(head) == qcow2MinimumHeaderSize {
		head, err = buffered.Peek(qcow2HeaderArea(head, size))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %s header: %w", rootImageName, err)
		}
	}
	img.Format, img.StemcellFormat = FormatQcow2, StemcellOpenStackQcow2
	if img.VirtualSize, err = checkQcow2(head); err != nil {
		return nil, fmt.Errorf("%s: %w", rootImageName, err)
	}
	return img, nil
}
