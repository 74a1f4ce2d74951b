package stemcell

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// maxOVFSize bounds the descriptor read into memory; a vSphere stemcell's
// is a few KiB.
const maxOVFSize = 1 << 20

// ovfEnvelope is the part of an OVF descriptor (DMTF DSP0243, 1.x and 2.x)
// a stemcell import reads. Names match in any namespace: OVF 1 and 2 differ
// only in theirs.
type ovfEnvelope struct {
	XMLName    xml.Name    `xml:"Envelope"`
	Files      []ovfFile   `xml:"References>File"`
	Disks      []ovfDisk   `xml:"DiskSection>Disk"`
	Systems    []ovfSystem `xml:"VirtualSystem"`
	Collection *struct{}   `xml:"VirtualSystemCollection"`
}

type ovfFile struct {
	ID          string `xml:"id,attr"`
	Href        string `xml:"href,attr"`
	Size        string `xml:"size,attr"`
	Compression string `xml:"compression,attr"`
	ChunkSize   string `xml:"chunkSize,attr"`
}

type ovfDisk struct {
	DiskID   string `xml:"diskId,attr"`
	FileRef  string `xml:"fileRef,attr"`
	Capacity string `xml:"capacity,attr"`
	Units    string `xml:"capacityAllocationUnits,attr"`
	Format   string `xml:"format,attr"`
}

type ovfSystem struct {
	Hardware []struct {
		// VMware writes <vmw:Config vmw:key="firmware" vmw:value="efi"/>;
		// some tools write it as ExtraConfig.
		Config      []ovfConfig `xml:"Config"`
		ExtraConfig []ovfConfig `xml:"ExtraConfig"`
	} `xml:"VirtualHardwareSection"`
}

type ovfConfig struct {
	Key   string `xml:"key,attr"`
	Value string `xml:"value,attr"`
}

// ovfDescriptor is what an import needs from the OVF.
type ovfDescriptor struct {
	// Href is the VMDK's name in the image tarball.
	Href string
	// Size is the VMDK's size the OVF gives, -1 when it gives none.
	Size int64
	// Capacity is the disk size the guest sees, in bytes.
	Capacity uint64
	Firmware Firmware
}

// parseOVF reads an OVF descriptor of one virtual system with one disk,
// whose file is a VMDK in the same tarball.
func parseOVF(r io.Reader) (ovfDescriptor, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxOVFSize+1))
	if err != nil {
		return ovfDescriptor{}, fmt.Errorf("reading the OVF: %w", err)
	}
	if len(data) > maxOVFSize {
		return ovfDescriptor{}, fmt.Errorf("the OVF is over %d KiB: not a stemcell's descriptor", maxOVFSize>>10)
	}
	var env ovfEnvelope
	dec := xml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&env); err != nil {
		return ovfDescriptor{}, fmt.Errorf("the OVF is not an OVF Envelope: %w", err)
	}
	if env.Collection != nil || len(env.Systems) != 1 {
		return ovfDescriptor{}, fmt.Errorf("the OVF describes %d virtual systems: a stemcell has exactly one", len(env.Systems))
	}
	if len(env.Disks) != 1 {
		return ovfDescriptor{}, fmt.Errorf("the OVF has %d disks in its DiskSection: a stemcell has exactly one", len(env.Disks))
	}
	disk := env.Disks[0]
	file, err := referencedFile(env.Files, disk)
	if err != nil {
		return ovfDescriptor{}, err
	}
	desc := ovfDescriptor{Href: file.Href, Size: -1}
	if desc.Capacity, err = ovfCapacity(disk.Capacity, disk.Units); err != nil {
		return ovfDescriptor{}, fmt.Errorf("disk '%s': %w", disk.DiskID, err)
	}
	if file.Size != "" {
		if desc.Size, err = strconv.ParseInt(file.Size, 10, 64); err != nil || desc.Size < 0 {
			return ovfDescriptor{}, fmt.Errorf("file '%s' has size %q, not a number of bytes", file.ID, file.Size)
		}
	}
	if desc.Firmware, err = ovfFirmware(env.Systems[0]); err != nil {
		return ovfDescriptor{}, err
	}
	return desc, nil
}

// referencedFile finds the disk's file: a plain name in the tarball, not
// compressed nor chunked by the OVF, in the VMDK format.
func referencedFile(files []ovfFile, disk ovfDisk) (ovfFile, error) {
	if disk.FileRef == "" {
		return ovfFile{}, fmt.Errorf("disk '%s' has no fileRef: a stemcell's disk comes with its image", disk.DiskID)
	}
	if !strings.Contains(strings.ToLower(disk.Format), "vmdk") {
		return ovfFile{}, fmt.Errorf("disk '%s' has format %q: a vSphere stemcell's disk is a VMDK", disk.DiskID, disk.Format)
	}
	var found []ovfFile
	for _, f := range files {
		if f.ID == disk.FileRef {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		return ovfFile{}, fmt.Errorf("disk '%s' names file '%s', which the OVF's References list %d times", disk.DiskID, disk.FileRef, len(found))
	}
	f := found[0]
	if f.Href == "" || path.IsAbs(f.Href) || strings.Contains(f.Href, "://") || path.Clean(f.Href) != f.Href ||
		f.Href == ".." || strings.HasPrefix(f.Href, "../") {
		return ovfFile{}, fmt.Errorf("file '%s' has href %q: a stemcell's VMDK is a file of the image tarball, named relative to the OVF", f.ID, f.Href)
	}
	if f.Compression != "" && f.Compression != "identity" {
		return ovfFile{}, fmt.Errorf("file '%s' is %s-compressed by the OVF: not supported, a stemcell's VMDK is stored as it is", f.ID, f.Compression)
	}
	if f.ChunkSize != "" {
		return ovfFile{}, fmt.Errorf("file '%s' is split in chunks: not supported", f.ID)
	}
	return f, nil
}

// ovfUnits is DSP0004's programmatic unit form the OVF uses for capacity:
// "byte", "byte * 2^20", "byte * 10^9"; some tools write KB, MB, GB.
var ovfUnits = regexp.MustCompile(`^byte(?:\s*\*\s*(2|10)\^(\d{1,2}))?$`)

var ovfUnitShorthands = map[string]uint64{
	"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
	"kilobytes": 1 << 10, "megabytes": 1 << 20, "gigabytes": 1 << 30,
}

// ovfCapacity multiplies the capacity by its allocation units (bytes when
// none are given), refusing property references (${...}) and overflow.
func ovfCapacity(capacity, units string) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(capacity), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("capacity %q is not a whole number (a stemcell's OVF gives it, not a property)", capacity)
	}
	if n == 0 {
		return 0, errors.New("capacity is 0")
	}
	unit, err := ovfUnit(units)
	if err != nil {
		return 0, err
	}
	hi, bytes := bits.Mul64(n, unit)
	if hi != 0 || bytes > vmdkMaxCapacity*vmdkSector {
		return 0, fmt.Errorf("capacity %s × %q is out of range", capacity, units)
	}
	return bytes, nil
}

func ovfUnit(units string) (uint64, error) {
	u := strings.ToLower(strings.TrimSpace(units))
	if u == "" {
		return 1, nil
	}
	if m, ok := ovfUnitShorthands[u]; ok {
		return m, nil
	}
	m := ovfUnits.FindStringSubmatch(u)
	if m == nil {
		return 0, fmt.Errorf("capacityAllocationUnits %q is not a unit of bytes (e.g. \"byte * 2^20\")", units)
	}
	if m[1] == "" {
		return 1, nil
	}
	base, _ := strconv.ParseUint(m[1], 10, 64)
	exp, _ := strconv.Atoi(m[2])
	unit := uint64(1)
	for range exp {
		hi, lo := bits.Mul64(unit, base)
		if hi != 0 {
			return 0, fmt.Errorf("capacityAllocationUnits %q is out of range", units)
		}
		unit = lo
	}
	return unit, nil
}

// ovfFirmware reads VMware's firmware key: efi or bios; no key is bios,
// what vSphere assumes too.
func ovfFirmware(sys ovfSystem) (Firmware, error) {
	fw := FirmwareBIOS
	seen := ""
	for _, hw := range sys.Hardware {
		for _, c := range append(hw.Config, hw.ExtraConfig...) {
			if c.Key != "firmware" {
				continue
			}
			v := strings.ToLower(strings.TrimSpace(c.Value))
			if seen != "" && v != seen {
				return "", fmt.Errorf("the OVF says firmware %q and %q", seen, v)
			}
			seen = v
			switch v {
			case "efi":
				fw = FirmwareEFI
			case "bios":
				fw = FirmwareBIOS
			default:
				return "", fmt.Errorf("the OVF's firmware %q is neither efi nor bios", c.Value)
			}
		}
	}
	return fw, nil
}
