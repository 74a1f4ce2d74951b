package suite

// Measurements, not assertions: run with BOSH_LIBVIRT_CPI_MEASURE=1 (and
// BOSH_LIBVIRT_CPI_URI) and -v to print create_vm latency and stemcell
// upload throughput on this host.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
)

func measuring(t *testing.T) {
	t.Helper()
	if os.Getenv("BOSH_LIBVIRT_CPI_MEASURE") == "" {
		t.Skip("BOSH_LIBVIRT_CPI_MEASURE not set")
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestMeasureCreateVMLatency(t *testing.T) {
	measuring(t)
	e := newTestEnv(t)
	ctx := context.Background()
	netName := e.isolatedNetwork()
	for _, size := range []uint64{1 << 30, 10 << 30} {
		scCID := e.importStemcell(size)
		var creates, deletes []time.Duration
		for range 5 {
			spec := e.vmSpec(scCID, netName)
			start := time.Now()
			if err := e.createVM(e.b, &spec); err != nil {
				t.Fatal(err)
			}
			creates = append(creates, time.Since(start))
			start = time.Now()
			if err := e.b.DeleteVM(ctx, spec.CID); err != nil {
				t.Fatal(err)
			}
			deletes = append(deletes, time.Since(start))
		}
		t.Logf("MEASURE stemcell virtual size %d GiB: create_vm median %v (all %v); delete_vm (running VM) median %v (all %v)",
			size>>30, median(creates), creates, median(deletes), deletes)
	}
}

func TestMeasureStemcellUpload(t *testing.T) {
	measuring(t)
	e := newTestEnv(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "root.img")
	const size = 1 << 30
	writeRandomFile(t, raw, size)
	for _, c := range []struct {
		name  string
		image func() string
	}{
		{"plain tar", func() string { return tarOf(t, dir, "image.tar", "") }},
		{"tgz (gzip -1)", func() string { return tarOf(t, dir, "image.tgz", "--use-compress-program=gzip -1") }},
	} {
		path := c.image()
		for range 2 {
			measureImport(t, e, path, c.name, size)
		}
		os.Remove(path)
	}
}

func measureImport(t *testing.T, e *testEnv, path, name string, size int64) {
	img, err := stemcell.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	cid := stemcell.NewCID()
	start := time.Now()
	err = e.b.ImportStemcell(context.Background(), cid, img)
	elapsed := time.Since(start)
	img.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE import of a %d MiB raw root.img from a %s: %v, %.0f MiB/s", size>>20, name, elapsed, float64(size)/(1<<20)/elapsed.Seconds())
	if err := e.b.DeleteStemcell(context.Background(), cid); err != nil {
		t.Fatal(err)
	}
}

// writeRandomFile fills path with incompressible bytes, so neither gzip
// nor a sparse file can make the upload look faster than it is.
func writeRandomFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
}

func tarOf(t *testing.T, dir, name, compress string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	args := []string{"-C", dir, "-cf", out, "root.img"}
	if compress != "" {
		args = append([]string{compress}, args...)
	}
	if b, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("tar: %v: %s", err, b))
	}
	return out
}
