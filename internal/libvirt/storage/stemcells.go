package storage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/disk"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/hypervisor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
)

// progressEvery is how often a long upload reports how far it got.
const progressEvery = 5 * time.Second

// ImportStemcell stores root.img as the volume named cid, in the image's
// own format, streamed through libvirt's storage API so that a remote
// libvirtd works the same as a local one. On failure the volume is removed.
func (b *Pool) ImportStemcell(ctx context.Context, cid string, img *stemcell.Image) error {
	if img.Size <= 0 || img.VirtualSize == 0 {
		return fmt.Errorf("importing stemcell '%s': image has no content (size %d bytes, virtual size %d bytes)", cid, img.Size, img.VirtualSize)
	}
	// Creation record, ownership record, then the data: a call killed
	// anywhere leaves the creation record for the sweep.
	finish, err := b.BeginCreate(ctx, cid)
	if err != nil {
		return fmt.Errorf("importing stemcell '%s': %w", cid, err)
	}
	if err := b.importStemcell(ctx, cid, img); err != nil {
		b.UndoVolume(ctx, StagingVolumeName(cid))
		b.UndoVolume(ctx, cid)
		b.UndoVolume(ctx, MetaVolumeName(cid))
		if finishErr := finish(); finishErr != nil {
			b.log.Warn("could not remove the creation record; the sweep will", "stemcell", cid, "error", finishErr)
		}
		return err
	}
	if err := finish(); err != nil {
		b.UndoVolume(ctx, cid)
		b.UndoVolume(ctx, MetaVolumeName(cid))
		return fmt.Errorf("importing stemcell '%s': %w", cid, err)
	}
	return nil
}

// importStemcell writes the ownership record (with how the stemcell
// boots) and uploads the image: as it is for qcow2 and raw, through a
// staging volume converted on the libvirt host for a VMDK.
func (b *Pool) importStemcell(ctx context.Context, cid string, img *stemcell.Image) error {
	if err := b.WriteMeta(ctx, cid, MetaDocument{Owner: NewOwner(KindStemcell), Boot: BootOf(img)}); err != nil {
		return fmt.Errorf("importing stemcell '%s': writing its ownership record: %w", cid, err)
	}
	if img.Format == stemcell.FormatVMDK {
		return b.importVMDK(ctx, cid, img)
	}
	vol, err := b.CreateVolume(ctx, stemcellVolumeDoc(cid, img))
	if err != nil {
		return fmt.Errorf("creating volume for stemcell '%s': %w", cid, err)
	}
	return b.uploadStemcell(ctx, cid, vol, img)
}

// uploadStemcell streams the image into vol.
func (b *Pool) uploadStemcell(ctx context.Context, cid string, vol golibvirt.StorageVol, img *stemcell.Image) error {
	progress := newProgressReader(ctx, img.Reader, img.Size, b.log.With("stemcell", cid))
	if err := b.UploadVolume(ctx, vol, progress, uint64(img.Size)); err != nil {
		return fmt.Errorf("uploading stemcell '%s' (%d bytes): %w", cid, img.Size, err)
	}
	// libvirt takes a short stream as the whole volume: a truncated image
	// must be caught here.
	if progress.done != img.Size {
		return fmt.Errorf("uploading stemcell '%s': image stream ended after %d of %d bytes", cid, progress.done, img.Size)
	}
	progress.finish()
	return nil
}

// importVMDK uploads a vSphere stemcell's streamOptimized VMDK into a
// staging volume and makes the stemcell volume from it as qcow2: libvirt
// converts on its own host (qemu-img convert, run by libvirtd), so a
// remote libvirtd works and the CPI runs no tool. A streamOptimized VMDK
// cannot back a copy-on-write overlay; qcow2 can. The staging volume is
// created as a VMDK, so libvirt reads the upload as one whenever it
// looks; it is removed once the copy exists (the sweep removes it after
// a killed call: it is one of the stemcell's volumes, see
// StemcellVolumeNames).
func (b *Pool) importVMDK(ctx context.Context, cid string, img *stemcell.Image) error {
	staging, err := b.CreateVolume(ctx, ThinVolume(StagingVolumeName(cid), img.VirtualSize, disk.Format(stemcell.FormatVMDK)))
	if err != nil {
		return fmt.Errorf("creating staging volume for stemcell '%s': %w", cid, err)
	}
	if err := b.uploadStemcell(ctx, cid, staging, img); err != nil {
		return err
	}
	started := time.Now()
	if _, err := b.CloneVolume(ctx, ThinVolume(cid, img.VirtualSize, disk.FormatQcow2), staging); err != nil {
		return fmt.Errorf("converting stemcell '%s' from VMDK to qcow2 on the libvirt host: %w", cid, err)
	}
	b.log.Info("converted stemcell to qcow2", "stemcell", cid, "seconds", fmt.Sprintf("%.2f", time.Since(started).Seconds()))
	if err := b.DeleteVolume(staging); err != nil && !cpierr.IsNotFound(err) {
		return fmt.Errorf("removing staging volume of stemcell '%s': %w", cid, err)
	}
	return nil
}

// stagingSuffix names the VMDK a vSphere stemcell is uploaded into before
// its conversion. A '.' never occurs in a CID.
const stagingSuffix = ".vmdk"

// StagingVolumeName is the staging volume of stemcell cid.
func StagingVolumeName(cid string) string { return cid + stagingSuffix }

// StemcellVolumeNames are every volume create_stemcell makes for cid.
func StemcellVolumeNames(cid string) []string {
	return []string{cid, MetaVolumeName(cid), StagingVolumeName(cid)}
}

// BootOf is how img's VMs boot: vSphere stemcells (a VMDK) read the env
// file on a CD-ROM and boot the firmware their OVF names; the others
// boot BIOS and read the config drive.
func BootOf(img *stemcell.Image) *StemcellBoot {
	boot := &StemcellBoot{Firmware: string(stemcell.FirmwareBIOS), Delivery: string(hypervisor.DeliveryConfigDrive)}
	if img.Firmware != "" {
		boot.Firmware = string(img.Firmware)
	}
	if img.Format == stemcell.FormatVMDK {
		boot.Delivery = string(hypervisor.DeliveryCDROMEnv)
	}
	return boot
}

// stemcellVolumeDoc: capacity is the guest-visible size; the upload then
// replaces the file's bytes with root.img as it is (qcow2 stays qcow2).
// Allocation 0 keeps a raw volume sparse until the upload fills it.
func stemcellVolumeDoc(cid string, img *stemcell.Image) libvirtxml.StorageVolume {
	return ThinVolume(cid, img.VirtualSize, disk.Format(img.Format))
}

// LookupStemcell finds the stemcell volume with its path, format and
// virtual size.
func (b *Pool) LookupStemcell(ctx context.Context, cid string) (Volume, error) {
	v, err := b.FindVolume(ctx, cid)
	if err != nil {
		return Volume{}, fmt.Errorf("finding stemcell '%s': %w", cid, err)
	}
	return v, nil
}

// VolumeDefinition reads a volume's XML as libvirtxml types.
func (b *Pool) VolumeDefinition(vol golibvirt.StorageVol) (*libvirtxml.StorageVolume, error) {
	doc, err := b.conn.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return nil, fmt.Errorf("reading XML of volume '%s': %w", vol.Name, host.Classify(err))
	}
	var def libvirtxml.StorageVolume
	if err := def.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parsing XML of volume '%s': %w", vol.Name, err)
	}
	return &def, nil
}

// sizeInBytes: libvirt reports volume sizes in bytes; other units are
// only ever seen in hand-written XML, so they are refused, not guessed.
func sizeInBytes(size *libvirtxml.StorageVolumeSize) (uint64, error) {
	switch size.Unit {
	case "", "bytes", "B", "b":
		return size.Value, nil
	}
	return 0, fmt.Errorf("unexpected size unit '%s' in volume XML", size.Unit)
}

// UndoVolume deletes a volume this call created, even when ctx has ended,
// and logs (does not return) a failure: the caller already has an error.
// It reconnects first when libvirtd dropped the connection, and waits
// while libvirtd is still building the volume.
func (b *Pool) UndoVolume(ctx context.Context, name string) {
	ctx = context.WithoutCancel(ctx)
	b.ReconnectIfLost(ctx)
	deadline := time.Now().Add(undoBusyWait)
	for {
		err := b.DeleteVolumeIfExists(ctx, name)
		if err == nil {
			return
		}
		if !volumeBusy(err) || time.Now().After(deadline) {
			b.log.Error("could not remove volume after a failure; remove it by hand", "volume", name, "error", err)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// progressReader logs how much of an upload has gone through, and how
// fast, every progressEvery. It also ends the upload when ctx ends: the
// RPC client has no context of its own, but it aborts the stream when a
// Read fails.
type progressReader struct {
	ctx   context.Context
	r     io.Reader
	total int64
	done  int64
	start time.Time
	last  time.Time
	log   *slog.Logger
}

func newProgressReader(ctx context.Context, r io.Reader, total int64, log *slog.Logger) *progressReader {
	now := time.Now()
	return &progressReader{ctx: ctx, r: r, total: total, start: now, last: now, log: log}
}

// Read passes reads straight through. (Filling whole 4 MiB packets with
// io.ReadFull was measured slower: smaller packets let libvirtd write
// while the next piece is decompressed.)
func (p *progressReader) Read(buf []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, fmt.Errorf("upload interrupted after %d bytes: %w", p.done, err)
	}
	n, err := p.r.Read(buf)
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) >= progressEvery {
		p.last = now
		p.log.Info("uploading stemcell", "percent", percent(p.done, p.total), "mib_per_s", p.rate(now))
	}
	return n, err
}

// finish logs the overall throughput.
func (p *progressReader) finish() {
	now := time.Now()
	p.log.Info("uploaded stemcell", "bytes", p.done, "seconds", fmt.Sprintf("%.2f", now.Sub(p.start).Seconds()), "mib_per_s", p.rate(now))
}

func (p *progressReader) rate(now time.Time) string {
	elapsed := now.Sub(p.start).Seconds()
	if elapsed <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(p.done)/(1<<20)/elapsed)
}

func percent(done, total int64) int {
	if total <= 0 {
		return 100
	}
	return int(done * 100 / total)
}
