package storage

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
)

// Ownership of volumes lives in the pool itself, so it holds on a remote
// libvirtd and after the loss of store_dir:
//   - a disk, snapshot or stemcell is ours when its sidecar "<cid>.meta"
//     exists (its document carries an Owner record; a version 1 sidecar,
//     written before records existed, is adopted as proof too);
//   - a VM's volumes are ours through the VM's domain, which carries our
//     marker;
//   - while a create call runs, a "creating" record volume
//     "<cid>.creating-<unix seconds>" exists. It is made before anything
//     else of the CID and removed as the call's last step, so a call killed
//     at any point leaves it behind. Its state and age are in its name: the
//     sweep finds orphans with one list call and no download.

// Kinds of objects an Owner record names.
const (
	KindDisk     = "disk"
	KindSnapshot = "snapshot"
	KindStemcell = "stemcell"
	KindVM       = "vm"
)

// Owner is the ownership record in a sidecar.
type Owner struct {
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	// Adopted is set on a record written for an object an earlier version
	// made (proved ours otherwise, e.g. attached to one of our domains).
	Adopted bool `json:"adopted,omitempty"`
}

// NewOwner is the record of an object of kind made now.
func NewOwner(kind string) *Owner { return &Owner{Kind: kind, CreatedAt: time.Now().UTC()} }

// creatingInfix separates a CID from the creation time in the name of its
// "creating" record volume.
const creatingInfix = ".creating-"

// CreatingVolumeName is the "creating" record of cid begun at t.
func CreatingVolumeName(cid string, t time.Time) string {
	return cid + creatingInfix + strconv.FormatInt(t.Unix(), 10)
}

// ParseCreatingVolumeName tells whether name is a "creating" record, and of
// which CID since when.
func ParseCreatingVolumeName(name string) (cid string, since time.Time, ok bool) {
	cid, stamp, found := strings.Cut(name, creatingInfix)
	if !found || cid == "" || strings.Contains(cid, ".") {
		return "", time.Time{}, false
	}
	secs, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return cid, time.Unix(secs, 0), true
}

// BeginCreate makes cid's "creating" record and returns the step that
// ends it (the create call's last). Until then the sweep may take
// everything of cid as an orphan once it is older than the safe age.
func (b *Pool) BeginCreate(ctx context.Context, cid string) (finish func() error, err error) {
	name := CreatingVolumeName(cid, time.Now())
	vol, err := b.CreateVolume(ctx, libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: 0, Unit: "bytes"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: string(disk.FormatRaw)}},
	})
	if err != nil {
		return nil, fmt.Errorf("recording the creation of '%s': %w", cid, err)
	}
	return func() error {
		if err := b.DeleteVolume(vol); err != nil && !cpierr.IsNotFound(err) {
			return fmt.Errorf("ending the creation record of '%s': %w", cid, err)
		}
		return nil
	}, nil
}

// RequireOwned answers nil when cid's ownership record (its sidecar) is in
// the pool, and ErrNotFound saying so when it is not: a volume of our name
// shape without a record is not ours and must look absent.
func (b *Pool) RequireOwned(ctx context.Context, cid string) error {
	_, err := b.LookupVolume(ctx, MetaVolumeName(cid))
	if cpierr.IsNotFound(err) {
		return fmt.Errorf("volume '%s' exists but was not made by this CPI (no ownership record '%s'): %w", cid, MetaVolumeName(cid), cpierr.ErrNotFound)
	}
	return err
}

// FindOwnedVolume is FindVolume of a volume that carries our record.
func (b *Pool) FindOwnedVolume(ctx context.Context, cid string) (Volume, error) {
	v, err := b.FindVolume(ctx, cid)
	if err != nil {
		return Volume{}, err
	}
	if err := b.RequireOwned(ctx, cid); err != nil {
		return Volume{}, err
	}
	return v, nil
}

// VolumeNames lists the names of every volume in the pool, in one call.
func (b *Pool) VolumeNames(ctx context.Context) ([]string, error) {
	pool, err := b.StoragePool(ctx)
	if err != nil {
		return nil, err
	}
	vols, _, err := b.conn.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("listing volumes of storage pool '%s': %w", pool.Name, host.Classify(err))
	}
	names := make([]string, len(vols))
	for i, v := range vols {
		names[i] = v.Name
	}
	return names, nil
}

// DeleteVolumes removes the named volumes that exist.
func (b *Pool) DeleteVolumes(ctx context.Context, names ...string) error {
	for _, name := range names {
		if err := b.DeleteVolumeIfExists(ctx, name); err != nil {
			return err
		}
	}
	return nil
}
