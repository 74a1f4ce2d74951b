package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpierr"
)

// settingsFile is, on a local host, the VM's settings on the host, bound
// into the container at SettingsPath (see settingsMount).
func (r *Runtime) settingsFile(cid string) string {
	return filepath.Join(r.vmDir(cid), "agent-env.json")
}

// settingsMount makes the VM's (empty) settings file on the host and binds
// it at SettingsPath: writing the settings is then a local file write, not
// a copy into the container's filesystem through the daemon (which mounts
// the container's root for it: a quarter of a plain create+start here).
func (r *Runtime) settingsMount(cid string) (mount.Mount, error) {
	f, err := os.OpenFile(r.settingsFile(cid), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return mount.Mount{}, fmt.Errorf("creating the agent settings file of VM '%s': %w", cid, err)
	}
	if err := f.Close(); err != nil {
		return mount.Mount{}, err
	}
	return mount.Mount{Type: mount.TypeBind, Source: r.settingsFile(cid), Target: SettingsPath, ReadOnly: true}, nil
}

// writeSettings puts the settings at SettingsPath in the container (created
// or running). On a local host whose VM binds the settings file, the file is
// rewritten in place (a bind-mounted file keeps its inode: a rename would
// leave the container with the old one); otherwise they are copied into
// the container, making the directories the image lacks. The file is 0600:
// it holds the mbus credentials. Its content is never logged.
func (r *Runtime) writeSettings(ctx context.Context, cid string, settings agentsettings.Settings) error {
	body, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encoding agent settings of VM '%s': %w", cid, err)
	}
	return r.putSettings(ctx, cid, body)
}

// putSettings writes the encoded settings as writeSettings says.
func (r *Runtime) putSettings(ctx context.Context, cid string, body []byte) error {
	if r.local {
		if _, err := os.Stat(r.settingsFile(cid)); err == nil {
			if err := writeInPlace(r.settingsFile(cid), body); err != nil {
				return fmt.Errorf("writing agent settings of VM '%s': %w", cid, err)
			}
			r.log.Debug("agent settings written", "cid", cid, "path", r.settingsFile(cid), "bytes", len(body))
			return nil
		}
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

// writeInPlace replaces file's content keeping its inode, synced.
func writeInPlace(file string, body []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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

// readSettings is the settings file of a container (by ID or name), as
// written: what a recreated container gets (recreate.go).
func (r *Runtime) readSettings(ctx context.Context, vmCID, containerID string) ([]byte, error) {
	rc, _, err := r.api.CopyFromContainer(ctx, containerID, SettingsPath)
	if err != nil {
		return nil, r.fail(err, "reading the agent settings of VM '%s'", vmCID)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("reading the agent settings of VM '%s': no file in the daemon's archive: %w", vmCID, err)
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, maxSettingsBytes))
		}
	}
}

// maxSettingsBytes bounds what readSettings takes in (settings are a few KiB).
const maxSettingsBytes = 16 << 20
