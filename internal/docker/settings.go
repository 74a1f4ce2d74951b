package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
)

// writeSettings puts the settings at SettingsPath in the container (created
// or running), making the directories the image lacks. The file is 0600:
// it holds the mbus credentials. Its content is never logged.
func (r *Runtime) writeSettings(ctx context.Context, cid string, settings agentsettings.Settings) error {
	body, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encoding agent settings of VM '%s': %w", cid, err)
	}
	base, err := r.deepestDir(ctx, cid, path.Dir(SettingsPath))
	if err != nil {
		return err
	}
	archive, err := settingsTar(base, SettingsPath, body)
	if err != nil {
		return err
	}
	if err := r.api.CopyToContainer(ctx, r.name(cid), base, archive, container.CopyToContainerOptions{}); err != nil {
		return r.fail(err, "writing agent settings into VM '%s'", cid)
	}
	r.log.Debug("agent settings written", "cid", cid, "path", SettingsPath, "bytes", len(body))
	return nil
}

// deepestDir is the deepest existing directory on the way to dir in the
// container, so that the archive creates only what is missing and never
// changes the mode of a directory the stemcell has.
func (r *Runtime) deepestDir(ctx context.Context, cid, dir string) (string, error) {
	for d := dir; ; d = path.Dir(d) {
		st, err := r.api.ContainerStatPath(ctx, r.name(cid), d)
		if err == nil && st.Mode.IsDir() {
			return d, nil
		}
		if err != nil && !errors.Is(r.fail(err, ""), cpierr.ErrNotFound) {
			return "", r.fail(err, "looking for '%s' in VM '%s'", d, cid)
		}
		if d == "/" {
			return "", fmt.Errorf("VM '%s' has no root directory", cid)
		}
	}
}

// settingsTar holds the directories below base leading to file, then file.
func settingsTar(base, file string, body []byte) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	rel := strings.TrimPrefix(strings.TrimPrefix(file, base), "/")
	parts := strings.Split(rel, "/")
	now := time.Now()
	for i := 1; i < len(parts); i++ {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.Join(parts[:i], "/") + "/", Mode: 0o755, ModTime: now}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o600, Size: int64(len(body)), ModTime: now}
	if err := tw.WriteHeader(h); err != nil {
		return nil, err
	}
	if _, err := tw.Write(body); err != nil {
		return nil, err
	}
	return &buf, tw.Close()
}

func writeJSON(file string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(file, body, 0o600)
}

func readJSON(file string, v any) error {
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding '%s': %w", file, err)
	}
	return nil
}
