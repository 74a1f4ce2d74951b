package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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

// Downloads read small volumes (metadata sidecars, test disks) into
// memory; readVolumeMax bounds what one may hold.
const readVolumeMax = 256 << 20

// downloadGrace is how long a download may take to return once every byte
// of the file has arrived; downloadStall is how long a stream may go
// without a byte before the attempt is abandoned; downloadAttempts bounds
// the retries of a stalled stream.
const (
	downloadGrace    = 5 * time.Second
	downloadStall    = 3 * time.Second
	downloadAttempts = 4
)

// ReadVolume returns all of vol's bytes (the file as stored: a qcow2
// volume comes out as qcow2).
//
// go-libvirt can hang at the end of a download stream: when libvirt's
// closing packet arrives before the call has deregistered, its socket
// listener blocks delivering it while holding the lock the call needs to
// return, and that connection is dead from then on. The packet may even
// overtake the call's last bytes, so the stream stops short. So each
// attempt runs on a connection of its own, which is left behind once the
// file's full length has arrived (a CPI call is a short-lived process),
// and an attempt that stalls short of the full length is abandoned and
// made again on a new connection.
func (b *Pool) ReadVolume(ctx context.Context, vol golibvirt.StorageVol) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("downloading volume '%s': %w", vol.Name, err)
	}
	_, _, length, err := b.conn.StorageVolGetInfoFlags(vol, uint32(golibvirt.StorageVolGetPhysical))
	if err != nil {
		return nil, fmt.Errorf("reading the size of volume '%s': %w", vol.Name, host.Classify(err))
	}
	if length > readVolumeMax {
		return nil, fmt.Errorf("downloading volume '%s': %d bytes is more than the %d this CPI reads into memory", vol.Name, length, readVolumeMax)
	}
	for attempt := 1; ; attempt++ {
		data, err := b.downloadAttempt(ctx, vol, length)
		if !errors.Is(err, errDownloadShort) || attempt == downloadAttempts {
			return data, err
		}
		b.log.Warn("download incomplete; trying again on a new connection", "volume", vol.Name, "attempt", attempt, "error", err)
	}
}

// errDownloadShort marks an attempt whose stream stopped short of the
// volume's length: it stalled, or it ended early.
var errDownloadShort = errors.New("incomplete download")

// downloadAttempt downloads vol's length bytes once, on a connection of
// its own.
func (b *Pool) downloadAttempt(ctx context.Context, vol golibvirt.StorageVol, length uint64) ([]byte, error) {
	conn, _, err := host.Connect(ctx, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("downloading volume '%s': %w", vol.Name, err)
	}
	counter := newCompletionWriter(length)
	result := make(chan error, 1)
	go func() { result <- conn.StorageVolDownload(vol, counter, 0, 0, 0) }()
	if err := counter.wait(ctx, result); err != nil {
		go conn.Disconnect()
		return nil, fmt.Errorf("downloading volume '%s': %w", vol.Name, host.Classify(err))
	}
	select {
	case err := <-result:
		go conn.Disconnect()
		if err != nil {
			return nil, fmt.Errorf("downloading volume '%s': %w", vol.Name, host.Classify(err))
		}
	case <-time.After(downloadGrace):
		b.log.Debug("download complete but the stream did not close; leaving its connection", "volume", vol.Name)
	}
	return counter.bytes(), nil
}

// completionWriter collects a download's bytes and closes done once want
// bytes arrived.
type completionWriter struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	want     uint64
	lastByte time.Time
	done     chan struct{}
}

func newCompletionWriter(want uint64) *completionWriter {
	c := &completionWriter{want: want, lastByte: time.Now(), done: make(chan struct{})}
	if want == 0 {
		close(c.done)
	}
	return c
}

func (c *completionWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := uint64(c.buf.Len())
	if before+uint64(len(p)) > c.want {
		return 0, fmt.Errorf("the stream sent more than the volume's %d bytes", c.want)
	}
	c.buf.Write(p)
	c.lastByte = time.Now()
	if before < c.want && uint64(c.buf.Len()) >= c.want {
		close(c.done)
	}
	return len(p), nil
}

// progress is how many bytes arrived and how long ago the last did.
func (c *completionWriter) progress() (uint64, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint64(c.buf.Len()), time.Since(c.lastByte)
}

func (c *completionWriter) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Bytes()
}

// wait returns once all bytes arrived (nil), the call ended short or
// failed, the stream stalled, or ctx ended.
func (c *completionWriter) wait(ctx context.Context, result <-chan error) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return nil
		case err := <-result:
			if got, _ := c.progress(); err == nil && got < c.want {
				return fmt.Errorf("%w: the stream ended after %d of %d bytes", errDownloadShort, got, c.want)
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if got, idle := c.progress(); idle > downloadStall {
				return fmt.Errorf("%w: the stream stalled after %d of %d bytes (nothing for %s)", errDownloadShort, got, c.want, idle.Round(time.Second))
			}
		}
	}
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
