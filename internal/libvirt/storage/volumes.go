package storage

import (
	"context"
	"fmt"
	"io"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
)

// Volume helpers shared by stemcells, VMs and disks. Every volume the CPI
// makes lives in the configured storage pool and is reached through
// libvirt's storage API only, so a remote libvirtd works like a local one.

// LookupVolume finds the volume called name in the configured pool. A
// missing volume wraps cpierr.ErrNotFound.
func (b *Pool) LookupVolume(ctx context.Context, name string) (golibvirt.StorageVol, error) {
	pool, err := b.StoragePool(ctx)
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	vol, err := b.conn.StorageVolLookupByName(pool, name)
	if err != nil {
		return golibvirt.StorageVol{}, fmt.Errorf("looking up volume '%s' in storage pool '%s': %w", name, pool.Name, host.Classify(err))
	}
	return vol, nil
}

// ThinVolume describes a volume of capacity bytes that allocates nothing up
// front: blocks are allocated as they are written.
func ThinVolume(name string, capacity uint64, format disk.Format) libvirtxml.StorageVolume {
	return libvirtxml.StorageVolume{
		Name:       name,
		Capacity:   &libvirtxml.StorageVolumeSize{Value: capacity, Unit: "bytes"},
		Allocation: &libvirtxml.StorageVolumeSize{Value: 0, Unit: "bytes"},
		Target:     &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: string(format)}},
	}
}

// CreateVolume creates doc in the configured pool. A full pool wraps
// cpierr.ErrNoSpace.
func (b *Pool) CreateVolume(ctx context.Context, doc libvirtxml.StorageVolume) (golibvirt.StorageVol, error) {
	pool, xml, err := b.volumeRequest(ctx, doc)
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	vol, err := b.conn.StorageVolCreateXML(pool, xml, 0)
	if err != nil {
		return golibvirt.StorageVol{}, fmt.Errorf("creating volume '%s' in storage pool '%s': %w", doc.Name, pool.Name, host.Classify(err))
	}
	return vol, nil
}

// CloneVolume creates doc in the configured pool with the contents of
// source (libvirt copies the data, converting format when they differ).
func (b *Pool) CloneVolume(ctx context.Context, doc libvirtxml.StorageVolume, source golibvirt.StorageVol) (golibvirt.StorageVol, error) {
	pool, xml, err := b.volumeRequest(ctx, doc)
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	vol, err := b.conn.StorageVolCreateXMLFrom(pool, xml, source, 0)
	if err != nil {
		return golibvirt.StorageVol{}, fmt.Errorf("copying volume '%s' to new volume '%s': %w", source.Name, doc.Name, host.Classify(err))
	}
	return vol, nil
}

// volumeRequest is what both ways of making a volume send: the configured
// pool and doc as XML.
func (b *Pool) volumeRequest(ctx context.Context, doc libvirtxml.StorageVolume) (golibvirt.StoragePool, string, error) {
	pool, err := b.StoragePool(ctx)
	if err != nil {
		return golibvirt.StoragePool{}, "", err
	}
	xml, err := doc.Marshal()
	if err != nil {
		return golibvirt.StoragePool{}, "", fmt.Errorf("building XML for volume '%s': %w", doc.Name, err)
	}
	return pool, xml, nil
}

// DeleteVolumeIfExists deletes the volume called name; a volume that is
// not there (or vanishes meanwhile) is not an error.
func (b *Pool) DeleteVolumeIfExists(ctx context.Context, name string) error {
	vol, err := b.LookupVolume(ctx, name)
	if err != nil {
		if cpierr.IsNotFound(err) {
			return nil
		}
		return err
	}
	if err := b.DeleteVolume(vol); err != nil && !cpierr.IsNotFound(err) {
		return err
	}
	return nil
}

// DeleteVolume deletes vol. One that vanished meanwhile is ErrNotFound.
func (b *Pool) DeleteVolume(vol golibvirt.StorageVol) error {
	if err := b.conn.StorageVolDelete(vol, 0); err != nil {
		return fmt.Errorf("deleting volume '%s': %w", vol.Name, host.Classify(err))
	}
	return nil
}

// VolumePath is the file (or device) behind vol, as a domain's <disk>
// source names it.
func (b *Pool) VolumePath(vol golibvirt.StorageVol) (string, error) {
	path, err := b.conn.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("reading path of volume '%s': %w", vol.Name, host.Classify(err))
	}
	return path, nil
}

// VolumeCapacity is vol's size as the guest sees it, in bytes.
func (b *Pool) VolumeCapacity(vol golibvirt.StorageVol) (uint64, error) {
	_, capacity, _, err := b.conn.StorageVolGetInfo(vol)
	if err != nil {
		return 0, fmt.Errorf("reading size of volume '%s': %w", vol.Name, host.Classify(err))
	}
	return capacity, nil
}

// UploadVolume replaces vol's bytes from offset 0 with length bytes of r.
// libvirt writes the stream into the file as is (no format conversion).
func (b *Pool) UploadVolume(ctx context.Context, vol golibvirt.StorageVol, r io.Reader, length uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("uploading to volume '%s': %w", vol.Name, err)
	}
	if err := b.conn.StorageVolUpload(vol, r, 0, length, 0); err != nil {
		return fmt.Errorf("uploading %d bytes to volume '%s': %w", length, vol.Name, host.Classify(err))
	}
	return nil
}

// downloadGrace is how long a download may take to return once every byte
// of the file has arrived.
const downloadGrace = 5 * time.Second

// DownloadVolume writes all of vol's bytes (the file as stored: a qcow2
// volume comes out as qcow2) to w.
//
// go-libvirt can hang after a download stream ends: when libvirt's closing
// packet arrives before the call has deregistered, its socket listener
// blocks delivering it while holding the lock the call needs to return, and
// the connection is dead from then on. So the download runs on a
// connection of its own, and once the file's full length has arrived we
// stop waiting and leave that connection behind (a CPI call is a
// short-lived process).
func (b *Pool) DownloadVolume(ctx context.Context, vol golibvirt.StorageVol, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("downloading volume '%s': %w", vol.Name, err)
	}
	_, _, length, err := b.conn.StorageVolGetInfoFlags(vol, uint32(golibvirt.StorageVolGetPhysical))
	if err != nil {
		return fmt.Errorf("reading the size of volume '%s': %w", vol.Name, host.Classify(err))
	}
	conn, _, err := host.Connect(ctx, b.cfg.URI)
	if err != nil {
		return fmt.Errorf("downloading volume '%s': %w", vol.Name, err)
	}
	counter := &completionWriter{w: w, want: length, done: make(chan struct{})}
	if length == 0 {
		close(counter.done)
	}
	result := make(chan error, 1)
	go func() { result <- conn.StorageVolDownload(vol, counter, 0, 0, 0) }()
	select {
	case err := <-result:
		go conn.Disconnect()
		if err != nil {
			return fmt.Errorf("downloading volume '%s': %w", vol.Name, host.Classify(err))
		}
		return counter.complete(vol.Name)
	case <-counter.done:
	case <-ctx.Done():
		return fmt.Errorf("downloading volume '%s': %w", vol.Name, ctx.Err())
	}
	select {
	case err := <-result:
		go conn.Disconnect()
		if err != nil {
			return fmt.Errorf("downloading volume '%s': %w", vol.Name, host.Classify(err))
		}
	case <-time.After(downloadGrace):
		b.log.Debug("download complete but the stream did not close; leaving its connection", "volume", vol.Name)
	}
	return counter.complete(vol.Name)
}

// completionWriter passes bytes on and closes done once want bytes passed.
type completionWriter struct {
	w       io.Writer
	want    uint64
	written uint64
	done    chan struct{}
}

func (c *completionWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	before := c.written
	c.written += uint64(n)
	if before < c.want && c.written >= c.want {
		close(c.done)
	}
	return n, err
}

func (c *completionWriter) complete(name string) error {
	if c.written < c.want {
		return fmt.Errorf("downloading volume '%s': got %d of %d bytes", name, c.written, c.want)
	}
	return nil
}

// ResizeVolumeTo sets a raw volume's size to exactly size bytes, so a
// shorter ISO leaves no stale tail of the previous one behind.
func (b *Pool) ResizeVolumeTo(vol golibvirt.StorageVol, size uint64) error {
	capacity, err := b.VolumeCapacity(vol)
	if err != nil {
		return err
	}
	if capacity == size {
		return nil
	}
	var flags golibvirt.StorageVolResizeFlags
	if size < capacity {
		flags = golibvirt.StorageVolResizeShrink
	}
	if err := b.conn.StorageVolResize(vol, size, flags); err != nil {
		return fmt.Errorf("resizing volume '%s' from %d to %d bytes: %w", vol.Name, capacity, size, host.Classify(err))
	}
	return nil
}

// EnsureSpace fails with ErrNoSpace when the pool has less than size
// bytes free. libvirt keeps the pool's free space current as volumes
// come and go through it; a refresh is not done because it fails while
// another call is building a volume.
func (b *Pool) EnsureSpace(ctx context.Context, size uint64) error {
	pool, err := b.StoragePool(ctx)
	if err != nil {
		return err
	}
	_, _, _, available, err := b.conn.StoragePoolGetInfo(pool)
	if err != nil {
		return fmt.Errorf("reading free space of storage pool '%s': %w", pool.Name, host.Classify(err))
	}
	if size > available {
		return fmt.Errorf("storage pool '%s' has %d MiB free, %d MiB needed: %w", pool.Name, available/MiB, (size+MiB-1)/MiB, cpierr.ErrNoSpace)
	}
	return nil
}
