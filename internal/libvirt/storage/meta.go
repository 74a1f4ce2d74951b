package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
)

// Disk and snapshot metadata live in a small raw "sidecar" volume beside
// the data volume, in the same pool: "<cid>.meta" holding JSON. It goes
// wherever the pool goes (another host's libvirtd, a restored pool
// directory) and survives the loss of the CPI's store_dir. libvirt's
// volume XML has no free-form metadata element, and writing into the
// disk image itself would touch data the guest owns.

// metaSuffix names a volume's metadata sidecar. A '.' never occurs in a
// disk or snapshot CID, so a sidecar is never mistaken for one.
const metaSuffix = ".meta"

// metaVersion is written into every sidecar so a later layout can be told
// from this one. Version 2 added the Owner record; a version 1 sidecar has
// none and is adopted as it is (only this CPI writes sidecars).
const metaVersion = 2

// metaMinBytes is the smallest sidecar: small rewrites fit without a
// resize.
const metaMinBytes = 4096

// MetaVolumeName is the sidecar of the volume named cid.
func MetaVolumeName(cid string) string { return cid + metaSuffix }

// MetaDocument is the sidecar's JSON.
type MetaDocument struct {
	Version  int           `json:"version"`
	Metadata disk.Metadata `json:"metadata"`
	// SnapshotOf is the disk a snapshot was taken from.
	SnapshotOf string `json:"snapshot_of,omitempty"`
	// Owner records that this CPI made the object, of which kind, when.
	Owner *Owner `json:"owner,omitempty"`
	// Boot is how a stemcell's VMs boot and read their settings; nil for
	// disks, snapshots and stemcells imported before it was recorded
	// (OpenStack ones: BIOS and the config drive).
	Boot *StemcellBoot `json:"boot,omitempty"`
}

// StemcellBoot are the facts of a stemcell create_vm needs beyond its
// volume: the firmware its disk boots with and how its agent reads
// settings (a hypervisor.Delivery).
type StemcellBoot struct {
	Firmware string `json:"firmware"`
	Delivery string `json:"delivery"`
}

// encodeMeta returns the JSON of doc.
func encodeMeta(doc MetaDocument) ([]byte, error) {
	doc.Version = metaVersion
	if doc.Metadata == nil {
		doc.Metadata = disk.Metadata{}
	}
	return json.Marshal(doc)
}

// padMeta pads raw with spaces to size bytes, so a rewrite always covers
// the whole volume: no tail of a longer earlier document survives, and
// JSON ignores the padding.
func padMeta(raw []byte, size uint64) []byte {
	return append(raw, bytes.Repeat([]byte(" "), int(size)-len(raw))...)
}

// metaCapacity is the sidecar size for a document of n bytes: whole
// blocks of metaMinBytes, so small rewrites need no resize.
func metaCapacity(n int) uint64 {
	return uint64((n/metaMinBytes + 1) * metaMinBytes)
}

// decodeMeta reads a sidecar's bytes. Trailing padding (spaces, or zeros
// of a volume that was never fully written) is ignored.
func decodeMeta(raw []byte) (MetaDocument, error) {
	text := strings.TrimRight(string(raw), " \x00\n")
	if text == "" {
		return MetaDocument{Metadata: disk.Metadata{}}, nil
	}
	var doc MetaDocument
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return MetaDocument{}, fmt.Errorf("parsing metadata JSON: %w", err)
	}
	if doc.Version > metaVersion {
		return MetaDocument{}, fmt.Errorf("metadata version %d is newer than this CPI understands (%d)", doc.Version, metaVersion)
	}
	if doc.Metadata == nil {
		doc.Metadata = disk.Metadata{}
	}
	return doc, nil
}

// SetDiskMetadata replaces the disk's metadata, keeping the rest of the
// sidecar (the ownership record). ErrNotFound when the disk is not there
// or is not ours.
func (b *Pool) SetDiskMetadata(ctx context.Context, cid string, meta disk.Metadata) error {
	if _, err := b.LookupVolume(ctx, cid); err != nil {
		return fmt.Errorf("setting metadata of disk '%s': %w", cid, err)
	}
	if err := b.RequireOwned(ctx, cid); err != nil {
		return fmt.Errorf("setting metadata of disk '%s': %w", cid, err)
	}
	doc, err := b.ReadMeta(ctx, cid)
	if err != nil {
		return fmt.Errorf("setting metadata of disk '%s': %w", cid, err)
	}
	doc.Metadata = meta
	if err := b.WriteMeta(ctx, cid, doc); err != nil {
		return fmt.Errorf("setting metadata of disk '%s': %w", cid, err)
	}
	b.log.Info("set disk metadata", "disk", cid, "keys", len(meta))
	return nil
}

// GetDiskMetadata returns the disk's metadata (empty when none was set).
// ErrNotFound when the disk is not there.
func (b *Pool) GetDiskMetadata(ctx context.Context, cid string) (disk.Metadata, error) {
	if _, err := b.LookupVolume(ctx, cid); err != nil {
		return nil, fmt.Errorf("reading metadata of disk '%s': %w", cid, err)
	}
	if err := b.RequireOwned(ctx, cid); err != nil {
		return nil, fmt.Errorf("reading metadata of disk '%s': %w", cid, err)
	}
	doc, err := b.ReadMeta(ctx, cid)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of disk '%s': %w", cid, err)
	}
	return doc.Metadata, nil
}

// WriteMeta stores doc in cid's sidecar, creating or growing it as needed
// (never shrinking: libvirt refuses to shrink below what is allocated).
// Callers hold the CID's lock, so no other call writes the same sidecar.
func (b *Pool) WriteMeta(ctx context.Context, cid string, doc MetaDocument) error {
	raw, err := encodeMeta(doc)
	if err != nil {
		return fmt.Errorf("encoding metadata: %w", err)
	}
	vol, size, err := b.metaVolumeFor(ctx, cid, len(raw))
	if err != nil {
		return err
	}
	return b.UploadVolume(ctx, vol, bytes.NewReader(padMeta(raw, size)), size)
}

// metaVolumeFor returns cid's sidecar, created or grown to hold n bytes,
// with its capacity.
func (b *Pool) metaVolumeFor(ctx context.Context, cid string, n int) (golibvirt.StorageVol, uint64, error) {
	name := MetaVolumeName(cid)
	vol, err := b.LookupVolume(ctx, name)
	if err != nil && !cpierr.IsNotFound(err) {
		return golibvirt.StorageVol{}, 0, err
	}
	if err != nil {
		size := metaCapacity(n)
		vol, err := b.CreateVolume(ctx, libvirtxml.StorageVolume{
			Name:     name,
			Capacity: &libvirtxml.StorageVolumeSize{Value: size, Unit: "bytes"},
			Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: string(disk.FormatRaw)}},
		})
		return vol, size, err
	}
	size, err := b.VolumeCapacity(vol)
	if err != nil || size >= uint64(n) {
		return vol, size, err
	}
	size = metaCapacity(n)
	if err := b.conn.StorageVolResize(vol, size, 0); err != nil {
		return golibvirt.StorageVol{}, 0, fmt.Errorf("growing metadata volume '%s' to %d bytes: %w", name, size, host.Classify(err))
	}
	return vol, size, nil
}

// ReadMeta returns cid's sidecar document; an absent sidecar is an empty
// document (metadata was never set).
func (b *Pool) ReadMeta(ctx context.Context, cid string) (MetaDocument, error) {
	vol, err := b.LookupVolume(ctx, MetaVolumeName(cid))
	if err != nil {
		if cpierr.IsNotFound(err) {
			return MetaDocument{Metadata: disk.Metadata{}}, nil
		}
		return MetaDocument{}, err
	}
	raw, err := b.ReadVolume(ctx, vol)
	if err != nil {
		return MetaDocument{}, err
	}
	doc, err := decodeMeta(raw)
	if err != nil {
		return MetaDocument{}, fmt.Errorf("metadata volume '%s': %w", vol.Name, err)
	}
	return doc, nil
}

// DeleteMeta removes cid's sidecar if there is one.
func (b *Pool) DeleteMeta(ctx context.Context, cid string) error {
	if err := b.DeleteVolumeIfExists(ctx, MetaVolumeName(cid)); err != nil {
		return fmt.Errorf("removing metadata volume: %w", err)
	}
	return nil
}
