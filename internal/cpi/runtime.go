package cpi

import (
	"context"
	"net"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/network"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
)

// The interfaces below are what a runtime (libvirt with one hypervisor
// profile today; later a container runtime) implements. They speak in CIDs
// the CPI layer has already validated and in specs it has already decoded;
// they return the sentinel errors of package cpierr (ErrNotFound, ErrInUse,
// ErrNotAttached, ErrNoSpace, ErrNotSupported), wrapped with detail, so the
// CPI layer can answer the director's error types. Facts only a runtime
// knows (device names, disk hints, MACs, how the agent reads its settings)
// are decided behind them.

// Stemcells imports and removes stemcell images.
type Stemcells interface {
	// ImportStemcell stores img under cid. On failure nothing is left.
	ImportStemcell(ctx context.Context, cid string, img *stemcell.Image) error
	// DeleteStemcell removes it; ErrNotFound when it is not there.
	DeleteStemcell(ctx context.Context, cid string) error
}

// VMs runs BOSH VMs.
type VMs interface {
	// CreateVM creates and starts the VM and delivers its agent settings
	// the way its stemcells read them. The runtime completes what only it
	// knows (each NIC's MAC, the system, ephemeral and, when
	// spec.PersistentDisksInSettings, persistent disk hints) and returns
	// the settings the agent got. On failure nothing of the VM is left.
	CreateVM(ctx context.Context, spec vm.Spec, settings agentsettings.Settings) (agentsettings.Settings, error)
	// DeleteVM stops and removes the VM with its root disk, ephemeral disk,
	// settings delivery and console log; never a persistent disk (those are
	// detached first). ErrNotFound when the VM is not there.
	DeleteVM(ctx context.Context, cid string) error
	HasVM(ctx context.Context, cid string) (bool, error)
	// RebootVM shuts down gracefully, resets after the timeout, and starts.
	RebootVM(ctx context.Context, cid string) error
	SetVMMetadata(ctx context.Context, cid string, meta vm.Metadata) error
	// UpdateSettings delivers changed agent settings (and the SSH keys of
	// the VM's meta-data) to the VM; stemcells without API v2 read them
	// again at their next boot.
	UpdateSettings(ctx context.Context, cid string, settings agentsettings.Settings, publicKeys []string) error
}

// Disks manages persistent disks.
type Disks interface {
	CreateDisk(ctx context.Context, spec disk.Spec) error
	// DeleteDisk refuses (ErrInUse) while the disk is attached.
	DeleteDisk(ctx context.Context, cid string) error
	HasDisk(ctx context.Context, cid string) (bool, error)
	// AttachDisk hot-plugs the disk into a running VM (or adds it to a
	// stopped one) and persists it in the VM definition. It returns the
	// hint the agent finds the disk by. ErrInUse when attached to another VM.
	AttachDisk(ctx context.Context, vmCID, diskCID string) (disk.Hint, error)
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
}

// Snapshots is optional: a runtime without it answers NotSupported to
// snapshot_disk and delete_snapshot.
type Snapshots interface {
	// SnapshotDisk makes a restorable point-in-time copy under snapCID.
	SnapshotDisk(ctx context.Context, diskCID, snapCID string, meta disk.Metadata) error
	DeleteSnapshot(ctx context.Context, snapCID string) error
}

// Networks is optional: a runtime without it answers NotSupported to
// create_network and delete_network.
type Networks interface {
	// CreateNetwork makes the planned network, or finds the one a
	// previous call made from the same plan. A network of that name that
	// the CPI did not make is refused and left alone.
	CreateNetwork(ctx context.Context, plan *network.Plan) error
	// DeleteNetwork removes a network the CPI made: ErrNotFound when it is
	// not there, ErrInUse while a VM has a NIC on it; a network the CPI
	// did not make is refused and left alone.
	DeleteNetwork(ctx context.Context, name string) error
	// WithFreeSubnet runs create with the first /bits block of pool that
	// overlaps no network or route of the host, under a lock held until
	// create returns, so parallel calls get distinct blocks. A network of
	// the CPI's named name with a /bits subnet of pool (what a killed
	// earlier call made) gives its own subnet instead.
	WithFreeSubnet(ctx context.Context, pool *net.IPNet, bits int, name string, create func(*net.IPNet) error) error
}

// Addresses is optional: a runtime without it reports no dynamic addresses.
type Addresses interface {
	// NICAddresses maps the MACs (lower case) of the VM's NICs to the IPv4
	// address the host knows each has; a NIC without one is left out.
	NICAddresses(ctx context.Context, cid string) (map[string]string, error)
}

// Runtime is one runtime, opened for the duration of one CPI call.
type Runtime interface {
	Stemcells
	VMs
	Disks
	Close() error
}

// Descriptor is a runtime chosen for a call but not yet connected: info
// answers from it alone, so it stays fast.
type Descriptor struct {
	// Name says which runtime and where, for messages.
	Name string
	// StemcellFormats are the formats info offers.
	StemcellFormats []string
	// Open connects; called at most once per process, and only by methods
	// that need the runtime.
	Open func(ctx context.Context) (Runtime, error)
}

// Selector picks the runtime a call's config names, connecting to nothing.
// It refuses a config that names a runtime or hypervisor this CPI lacks.
type Selector func(cfg config.Config) (Descriptor, error)
