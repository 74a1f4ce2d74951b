package docker

// What a killed test run left (its pid is gone) is removed before the
// first test: names carry cpi-dktest<hex>-<pid>-. Live runs, other
// worktrees' included, are never touched.

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
)

var (
	sweepOnce sync.Once
	runName   = regexp.MustCompile(`^/?cpi-dktest[0-9a-f]{8}-([0-9]+)-`)
)

// deadRun tells whether name belongs to a test run whose process is gone.
func deadRun(name string) bool {
	m := runName.FindStringSubmatch(strings.TrimPrefix(name, imageRepo+":"))
	if m == nil {
		return false
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func sweepDeadRuns(host string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := Open(ctx, Config{Host: host}, slog.New(slog.DiscardHandler))
	if err != nil {
		return // the test that follows says why
	}
	defer r.Close()
	any := filters.NewArgs(filters.Arg("name", "cpi-dktest"))
	if cs, err := r.api.ContainerList(ctx, container.ListOptions{All: true, Filters: any}); err == nil {
		for _, c := range cs {
			if deadRun(containerName(c)) {
				r.api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
	}
	if vs, err := r.api.VolumeList(ctx, volume.ListOptions{Filters: any}); err == nil {
		for _, v := range vs.Volumes {
			if deadRun(v.Name) {
				r.api.VolumeRemove(ctx, v.Name, true)
			}
		}
	}
	if ns, err := r.api.NetworkList(ctx, network.ListOptions{Filters: any}); err == nil {
		for _, n := range ns {
			if deadRun(n.Name) {
				r.api.NetworkRemove(ctx, n.ID)
			}
		}
	}
	if imgs, err := r.api.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", imageRepo+":cpi-dktest*"))}); err == nil {
		for _, img := range imgs {
			for _, tag := range img.RepoTags {
				if deadRun(tag) {
					r.api.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true})
				}
			}
		}
	}
}
