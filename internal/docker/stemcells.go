package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/vm"
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
// daemon as an image, then labels it with what its init is (LabelInit): a
// systemd stemcell needs a container made for systemd (see createContainer).
// The label cannot be known before the stream is read, and an imported
// image's labels are fixed, so the import is tagged '<ref>.importing' and a
// commit of an unstarted probe container adds the label under the final
// ref. The stemcell exists only once the final ref does: a call killed
// before leaves an '.importing' tag (ours, with no CID behind it), never a
// stemcell without its label. Nothing is copied to disk on the way.
func (r *Runtime) importRootfs(ctx context.Context, cid string, rootfsTgz io.Reader) error {
	changes := []string{}
	for k, v := range r.labels("stemcell", cid) {
		changes = append(changes, fmt.Sprintf("LABEL %s=%s", k, v))
	}
	r.sweepKilledImports(ctx)
	ref, staging := r.imageRef(cid), r.imageRef(cid)+stagingSuffix
	out, err := r.api.ImageImport(ctx, image.ImportSource{Source: rootfsTgz, SourceName: "-"}, staging,
		image.ImportOptions{Changes: changes, Message: "bosh stemcell " + cid})
	if err != nil {
		return r.fail(err, "importing stemcell '%s'", cid)
	}
	defer out.Close()
	if err := readProgress(out); err != nil {
		return fmt.Errorf("importing stemcell '%s': the daemon answered: %w", cid, err)
	}
	init, err := r.labelInit(ctx, cid, staging, ref)
	// The staging tag goes either way; after a commit the image stays as
	// the labelled one's parent.
	if _, rmErr := r.api.ImageRemove(ctx, staging, image.RemoveOptions{PruneChildren: err != nil}); rmErr != nil && err == nil {
		r.log.Warn("removing the staging tag of an imported stemcell failed", "cid", cid, "tag", staging, "err", rmErr)
	}
	if err != nil {
		return err
	}
	r.log.Info("stemcell imported", "cid", cid, "image", ref, "init", init)
	return nil
}

// labelInit finds what /sbin/init is in the staging image (through a
// probe container that never starts) and commits the probe as ref with
// LabelInit set.
func (r *Runtime) labelInit(ctx context.Context, cid, staging, ref string) (string, error) {
	probe, err := r.api.ContainerCreate(ctx, &container.Config{Image: staging, Cmd: []string{"/sbin/init"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, r.name(cid)+"-probe")
	if err != nil {
		return "", r.fail(err, "importing stemcell '%s': creating a probe container to read its /sbin/init", cid)
	}
	defer func() {
		if err := r.api.ContainerRemove(context.WithoutCancel(ctx), probe.ID, container.RemoveOptions{Force: true}); err != nil {
			r.log.Warn("removing the probe container failed", "cid", cid, "container", probe.ID, "err", err)
		}
	}()
	init := vm.InitPlain
	st, err := r.api.ContainerStatPath(ctx, probe.ID, "/sbin/init")
	switch {
	case err == nil && initIsSystemd(st.LinkTarget):
		init = vm.InitSystemd
	case err != nil && !cerrdefs.IsNotFound(err):
		return "", r.fail(err, "importing stemcell '%s': reading its /sbin/init", cid)
	}
	if _, err := r.api.ContainerCommit(ctx, probe.ID, container.CommitOptions{Reference: ref,
		Changes: []string{fmt.Sprintf("LABEL %s=%s", LabelInit, init)}, Comment: "bosh stemcell " + cid}); err != nil {
		return "", r.fail(err, "importing stemcell '%s': labelling its image", cid)
	}
	return init, nil
}

// stagingSuffix tags an image whose import has not finished labelling.
const stagingSuffix = ".importing"

// killedImportAge is how old an import's leftovers must be before a later
// create_stemcell removes them: a younger one may be an import under way
// (a stemcell of a few hundred MiB imports in well under a minute).
const killedImportAge = 30 * time.Minute

// sweepKilledImports removes what create_stemcell calls killed between the
// import and the label left: images of ours tagged '<ref>.importing' and
// their unstarted probe containers, older than killedImportAge. Failures
// are logged only: they must not fail the import that found them.
func (r *Runtime) sweepKilledImports(ctx context.Context) {
	cutoff := time.Now().Add(-r.importSweepAge())
	imgs, err := r.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("reference", imageRepo+":"+r.name("")+"*"+stagingSuffix), filters.Arg("label", LabelOwner+"="+OwnerValue))})
	if err != nil {
		r.log.Warn("listing leftovers of killed stemcell imports failed", "err", err)
	}
	for _, img := range imgs {
		if time.Unix(img.Created, 0).After(cutoff) {
			continue
		}
		for _, tag := range img.RepoTags {
			if !strings.HasSuffix(tag, stagingSuffix) {
				continue
			}
			r.removeProbes(ctx, img.ID)
			if _, err := r.api.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true}); err != nil {
				r.log.Warn("removing a killed stemcell import failed", "tag", tag, "err", err)
				continue
			}
			r.log.Info("removed a killed stemcell import", "tag", tag)
		}
	}
}

// removeProbes removes the probe containers of an image of ours.
func (r *Runtime) removeProbes(ctx context.Context, imageID string) {
	probes, err := r.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("ancestor", imageID), filters.Arg("label", LabelOwner+"="+OwnerValue), filters.Arg("label", LabelKind+"=stemcell"))})
	if err != nil {
		r.log.Warn("listing probe containers failed", "image", imageID, "err", err)
		return
	}
	for _, p := range probes {
		if strings.HasSuffix(containerName(p), "-probe") && p.State == "created" {
			if err := r.api.ContainerRemove(ctx, p.ID, container.RemoveOptions{Force: true}); err != nil {
				r.log.Warn("removing a probe container failed", "container", containerName(p), "err", err)
			}
		}
	}
}

func (r *Runtime) importSweepAge() time.Duration {
	if r.sweepAge != nil {
		return *r.sweepAge
	}
	return killedImportAge
}

// initIsSystemd tells from where /sbin/init resolves to (the daemon
// follows the links inside the image: /sbin/init -> /lib/systemd/systemd,
// /usr/lib/systemd/systemd on merged /usr) whether it is systemd.
func initIsSystemd(linkTarget string) bool {
	return path.Base(linkTarget) == "systemd"
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
