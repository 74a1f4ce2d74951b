package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
)

// imageRepo holds every stemcell image; the tag is the (prefixed) CID.
const imageRepo = "bosh-libvirt-cpi/stemcell"

func (r *Runtime) imageRef(cid string) string { return imageRepo + ":" + r.name(cid) }

// ImportStemcell imports a warden-tar/general-tar stemcell's root
// filesystem tarball; other image formats are ErrNotSupported.
func (r *Runtime) ImportStemcell(ctx context.Context, cid string, img *stemcell.Image) error {
	if img.Format != stemcell.FormatRootfsTar {
		return fmt.Errorf("Docker runtime: stemcell '%s' is %s (image format %s); containers run only warden-tar or general-tar stemcells: %w",
			cid, img.StemcellFormat, img.Format, cpierr.ErrNotSupported)
	}
	return r.importRootfs(ctx, cid, img.Reader)
}

// importRootfs streams a root filesystem tarball (gzipped or not) into the
// daemon as an image tagged with cid; nothing is copied to disk on the way.
// On failure nothing is left (the daemon keeps no half-imported image).
func (r *Runtime) importRootfs(ctx context.Context, cid string, rootfsTgz io.Reader) error {
	changes := []string{}
	for k, v := range r.labels("stemcell", cid) {
		changes = append(changes, fmt.Sprintf("LABEL %s=%s", k, v))
	}
	ref := r.imageRef(cid)
	out, err := r.api.ImageImport(ctx, image.ImportSource{Source: rootfsTgz, SourceName: "-"}, ref,
		image.ImportOptions{Changes: changes, Message: "bosh stemcell " + cid})
	if err != nil {
		return r.fail(err, "importing stemcell '%s'", cid)
	}
	defer out.Close()
	if err := readProgress(out); err != nil {
		return fmt.Errorf("importing stemcell '%s': the daemon answered: %w", cid, err)
	}
	r.log.Info("stemcell imported", "cid", cid, "image", ref)
	return nil
}

// readProgress drains a daemon's JSON message stream and returns the first
// error message in it.
func readProgress(stream io.Reader) error {
	dec := json.NewDecoder(stream)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading progress: %w", err)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return errors.New(msg.ErrorDetail.Message)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// HasStemcell tells whether the stemcell's image is there.
func (r *Runtime) HasStemcell(ctx context.Context, cid string) (bool, error) {
	_, err := r.stemcellImage(ctx, cid)
	switch {
	case errors.Is(err, cpierr.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

func (r *Runtime) stemcellImage(ctx context.Context, cid string) (image.InspectResponse, error) {
	img, err := r.api.ImageInspect(ctx, r.imageRef(cid))
	if err != nil {
		return image.InspectResponse{}, r.fail(err, "finding stemcell '%s'", cid)
	}
	if img.Config == nil || !ours(img.Config.Labels) {
		return image.InspectResponse{}, fmt.Errorf("stemcell '%s': image '%s' is not one of ours: %w", cid, r.imageRef(cid), cpierr.ErrNotFound)
	}
	return img, nil
}

// DeleteStemcell removes the image. ErrInUse while a container of ours
// runs it, ErrNotFound when it is not there.
func (r *Runtime) DeleteStemcell(ctx context.Context, cid string) error {
	img, err := r.stemcellImage(ctx, cid)
	if err != nil {
		return err
	}
	users, err := r.api.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("ancestor", img.ID))})
	if err != nil {
		return r.fail(err, "listing containers of stemcell '%s'", cid)
	}
	if len(users) > 0 {
		return fmt.Errorf("stemcell '%s' is used by %d container(s), e.g. '%s': %w", cid, len(users), containerName(users[0]), cpierr.ErrInUse)
	}
	if _, err := r.api.ImageRemove(ctx, r.imageRef(cid), image.RemoveOptions{PruneChildren: true}); err != nil {
		return r.fail(err, "removing stemcell '%s'", cid)
	}
	r.log.Info("stemcell deleted", "cid", cid)
	return nil
}

func containerName(c container.Summary) string {
	if len(c.Names) > 0 {
		return c.Names[0]
	}
	return c.ID
}
