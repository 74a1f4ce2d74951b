package cpi

import (
	"errors"
	"time"

	"github.com/cloudfoundry/bosh-cpi-go/apiv1"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
)

// CreateStemcell imports the image at imagePath into the runtime.
func (c *CPI) CreateStemcell(imagePath string, props apiv1.StemcellCloudProps) (apiv1.StemcellCID, error) {
	// Stemcell properties are descriptive: unknown keys are fine, and
	// properties that do not decode leave sprops empty, as none were given.
	var sprops stemcell.Props
	_ = props.As(&sprops)
	formats := c.descriptor.StemcellFormats
	if err := sprops.CheckAccepting(formats); err != nil {
		return apiv1.StemcellCID{}, cpierr.New(cpierr.TypeCloudError, err, "importing stemcell image '%s' into the %s runtime", imagePath, c.descriptor.Name)
	}
	img, err := stemcell.OpenFormats(imagePath, formats)
	if err != nil {
		return apiv1.StemcellCID{}, cpierr.New(cpierr.TypeCloudError, err, "importing stemcell")
	}
	defer img.Close()
	if err := sprops.Agrees(img.Format); err != nil {
		return apiv1.StemcellCID{}, cpierr.New(cpierr.TypeCloudError, err, "importing stemcell image '%s'", imagePath)
	}

	b, err := c.openRuntime()
	if err != nil {
		return apiv1.StemcellCID{}, err
	}
	cid := stemcell.NewCID()
	start := time.Now()
	c.log.Info("importing stemcell", "stemcell_cid", cid, "stemcell_format", img.StemcellFormat, "format", img.Format,
		"image_bytes", img.Size, "virtual_bytes", img.VirtualSize)
	if err := b.ImportStemcell(c.ctx, cid, img); err != nil {
		return apiv1.StemcellCID{}, cpierr.Wrap(err, "importing stemcell '%s' from '%s'", cid, imagePath)
	}
	c.log.Info("imported stemcell", "stemcell_cid", cid, "seconds", time.Since(start).Seconds())
	return apiv1.NewStemcellCID(cid), nil
}

// DeleteStemcell removes a stemcell; one already gone is not an error, so
// the director can retry a cleanup. A CID of another shape is refused and
// nothing is touched.
func (c *CPI) DeleteStemcell(cid apiv1.StemcellCID) error {
	id := cid.AsString()
	if !stemcell.ValidCID(id) {
		return cpierr.New(cpierr.TypeCloudError, nil, "stemcell '%s' not found: not a stemcell CID of this CPI", id)
	}
	b, err := c.openRuntime()
	if err != nil {
		return err
	}
	return c.withLocks([]string{id}, func() error {
		err := b.DeleteStemcell(c.ctx, id)
		if errors.Is(err, cpierr.ErrNotFound) {
			c.log.Warn("stemcell already gone", "stemcell_cid", id)
			return nil
		}
		return cpierr.Wrap(err, "deleting stemcell '%s'", id)
	})
}
