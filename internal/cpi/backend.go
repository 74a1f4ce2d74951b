package cpi

import (
	"context"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// The interfaces below are what a runtime (libvirt/QEMU, later LXC, Xen,
// VirtualBox through libvirt, Docker) implements. They speak in CIDs the CPI
// layer has already validated and in specs it has already decoded; they
// return the sentinel errors of package cpierr (ErrNotFound, ErrInUse,
// ErrNotAttached, ErrNoSpace, ErrNotSupported), wrapped with detail, so the
// CPI layer can answer the director's error types.

// Stemcells imports and removes stemcell images.
type Stemcells interface {
	// ImportStemcell stores img under cid. On failure nothing is left.
	ImportStemcell(ctx context.Context, cid string, img *stemcell.Image) error
	// DeleteStemcell removes it; ErrNotFound when it is not there.
	DeleteStemcell(ctx context.Context, cid string) error
}

// VMs runs BOSH VMs.
type VMs interface {
	// CreateVM creates and starts the VM. On failure nothing of it is left.
	CreateVM(ctx context.Context, spec vm.Spec) error
	// DeleteVM stops and removes the VM with its root disk, ephemeral disk,
	// config drive and console log; never a persistent disk (those are
	// detached first). ErrNotFound when the VM is not there.
	DeleteVM(ctx context.Context, cid string) error
	HasVM(ctx context.Context, cid string) (bool, error)
	// RebootVM shuts down gracefully, resets after the timeout, and starts.
	RebootVM(ctx context.Context, cid string) error
	SetVMMetadata(ctx context.Context, cid string, meta vm.Metadata) error
	// ReplaceConfigDrive swaps the VM's config drive contents (agent
	// settings rewritten for stemcells without API v2).
	ReplaceConfigDrive(ctx context.Context, cid string, iso []byte) error
}

// Disks manages persistent disks and their snapshots.
type Disks interface {
	CreateDisk(ctx context.Context, spec disk.Spec) error
	// DeleteDisk refuses (ErrInUse) while the disk is attached.
	DeleteDisk(ctx context.Context, cid string) error
	HasDisk(ctx context.Context, cid string) (bool, error)
	// AttachDisk hot-plugs the disk into a running VM (or adds it to a
	// stopped one) and persists it in the VM definition. It returns the
	// device target (e.g. "vdc"). ErrInUse when attached to another VM.
	AttachDisk(ctx context.Context, vmCID, diskCID string) (target string, err error)
	// DetachDisk hot-unplugs; ErrNotAttached when it is not attached.
	DetachDisk(ctx context.Context, vmCID, diskCID string) error
	// AttachedDisks lists persistent disk CIDs attached to the VM.
	AttachedDisks(ctx context.Context, vmCID string) ([]string, error)
	// ResizeDisk grows a detached disk in place. Shrinking is an error;
	// ErrNotSupported when the size cannot change in place.
	ResizeDisk(ctx context.Context, cid string, sizeMiB int) error
	SetDiskMetadata(ctx context.Context, cid string, meta disk.Metadata) error
	GetDiskMetadata(ctx context.Context, cid string) (disk.Metadata, error)
	// DiskHolders lists the VMs of ours that use the disk (live or in
	// their definition), so a caller can lock them first.
	DiskHolders(ctx context.Context, diskCID string) ([]string, error)
	// SnapshotDisk makes a restorable point-in-time copy under snapCID.
	SnapshotDisk(ctx context.Context, diskCID, snapCID string, meta disk.Metadata) error
	DeleteSnapshot(ctx context.Context, snapCID string) error
}

// Backend is one runtime, opened for the duration of one CPI call.
type Backend interface {
	Stemcells
	VMs
	Disks
	Close() error
}
