package main

// Docker figures beside QEMU's: create_vm, delete_vm and attach_disk of
// the CPI with runtime docker, and a plain baseline measured in the same
// run: an equivalent container (same image, network, ephemeral volume,
// CPU and memory limits) created, started and removed straight through
// the Docker Engine API over its socket (plain HTTP: the Docker client
// library belongs to internal/docker alone).

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/cpiclient"
)

const dockerSocket = "/var/run/docker.sock"

// sleeperInit is PID 1 of the bench rootfs: it waits to be stopped and
// stops at once when told (SIGTERM).
const sleeperInit = "#!/bin/sh\ntrap 'exit 0' TERM\nwhile :; do sleep 1 & wait $!; done\n"

// dockerAPI is a bare Docker Engine API client over the unix socket.
type dockerAPI struct{ http *http.Client }

func newDockerAPI() dockerAPI {
	return dockerAPI{http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", dockerSocket)
		}}}}
}

// do sends one request and decodes a JSON answer into out (when given).
func (d dockerAPI) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://docker"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("docker API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("docker API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// plainCreate makes and starts the equivalent container.
func (d dockerAPI) plainCreate(name, image string) error {
	if err := d.do("POST", "/volumes/create", map[string]any{"Name": name + "-ephemeral"}, nil); err != nil {
		return err
	}
	spec := map[string]any{"Image": image, "Cmd": []string{"/sbin/init"}, "Hostname": name,
		"HostConfig": map[string]any{"NetworkMode": "bridge", "Memory": 128 << 20, "MemorySwap": 128 << 20, "NanoCpus": 1e9,
			"Mounts": []map[string]any{{"Type": "volume", "Source": name + "-ephemeral", "Target": "/var/vcap/data"}}}}
	if err := d.do("POST", "/containers/create?name="+name, spec, nil); err != nil {
		return err
	}
	return d.do("POST", "/containers/"+name+"/start", nil, nil)
}

// plainRemove stops (SIGTERM, 10 s like the CPI) and removes it.
func (d dockerAPI) plainRemove(name string) error {
	if err := d.do("POST", "/containers/"+name+"/stop?t=10", nil, nil); err != nil {
		return err
	}
	if err := d.do("DELETE", "/containers/"+name+"?force=1", nil, nil); err != nil {
		return err
	}
	return d.do("DELETE", "/volumes/"+name+"-ephemeral", nil, nil)
}

// benchRootfs writes a warden stemcell image: busybox with sleeperInit.
func benchRootfs(dir string) (string, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return "", fmt.Errorf("busybox-static is needed for the Docker bench rootfs: %w", err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(h *tar.Header, body []byte) {
		h.Size, h.Mode = int64(len(body)), 0o755
		tw.WriteHeader(h)
		tw.Write(body)
	}
	for _, d := range []string{"bin/", "sbin/", "etc/", "tmp/", "proc/", "sys/", "dev/", "var/", "var/vcap/"} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox"}, bb)
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox"}, nil)
	add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sleep", Linkname: "busybox"}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "sbin/init"}, []byte(sleeperInit))
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "docker-image.tgz")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// dockerClient is the bench's CPI with runtime docker on the local daemon.
func (b bench) dockerClient() (cpiclient.Client, error) {
	cfg := map[string]any{"runtime": "docker", "store_dir": filepath.Join(b.env.Root, "docker-store"),
		"agent": map[string]any{"mbus": "https://mbus:bench@0.0.0.0:6868"}}
	raw, _ := json.Marshal(cfg)
	path := filepath.Join(b.env.Root, "cpi-docker.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return cpiclient.Client{}, err
	}
	return cpiclient.Client{Binary: b.env.Client.Binary, ConfigPath: path}, nil
}

func (b bench) dockerLatency() error {
	c, err := b.dockerClient()
	if err != nil {
		return err
	}
	image, err := benchRootfs(b.env.Root)
	if err != nil {
		return err
	}
	sc, _, err := c.CallString("create_stemcell", image, map[string]any{"infrastructure": "warden", "architecture": "x86_64"})
	if err != nil {
		return err
	}
	defer c.Call("delete_stemcell", sc)
	api := newDockerAPI()
	imageRef := "bosh-libvirt-cpi/stemcell:" + sc
	props := map[string]any{"cpus": 1, "memory": 128}
	nets := map[string]any{"default": map[string]any{"type": "dynamic", "default": []string{"dns", "gateway"}, "cloud_properties": map[string]any{}}}
	var creates, deletes, attaches, plainCreates, plainDeletes []time.Duration
	for i := 0; i < b.runs; i++ {
		vm, run, err := c.CreateVM(fmt.Sprintf("bench-docker-%d", i), sc, props, nets, map[string]any{}, nil)
		if err != nil {
			return fmt.Errorf("docker create_vm: %w\n%s", err, run.Stderr)
		}
		creates = append(creates, run.Took)
		disk, _, err := c.CallString("create_disk", 64, map[string]any{}, vm)
		if err != nil {
			return err
		}
		if _, run, err = c.Call("attach_disk", vm, disk); err != nil {
			return err
		}
		attaches = append(attaches, run.Took)
		if _, _, err = c.Call("detach_disk", vm, disk); err != nil {
			return err
		}
		c.Call("delete_disk", disk)
		if _, run, err = c.Call("delete_vm", vm); err != nil {
			return err
		}
		deletes = append(deletes, run.Took)

		name := fmt.Sprintf("bench-plain-%d-%d", os.Getpid(), i)
		start := time.Now()
		if err := api.plainCreate(name, imageRef); err != nil {
			return fmt.Errorf("plain baseline: %w", err)
		}
		plainCreates = append(plainCreates, time.Since(start))
		start = time.Now()
		if err := api.plainRemove(name); err != nil {
			return fmt.Errorf("plain baseline: %w", err)
		}
		plainDeletes = append(plainDeletes, time.Since(start))
	}
	report("docker create_vm", median(creates), "")
	report("docker delete_vm", median(deletes), "")
	report("docker attach_disk (running container)", median(attaches), "")
	ratio("docker create_vm / plain create+start", median(creates), median(plainCreates), "")
	ratio("docker delete_vm / plain stop+remove", median(deletes), median(plainDeletes), "")
	return nil
}
