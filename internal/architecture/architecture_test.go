package architecture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/bosh-libvirt-cpi/bosh-libvirt-cpi"

// maxShare is the most of the module's Go lines one package may hold.
const maxShare = 0.15

// libraryOwners: each outside library may be imported only by the
// packages under its adapter, so a runtime stays one folder.
var libraryOwners = []struct{ library, owner string }{
	{"github.com/digitalocean/go-libvirt", module + "/internal/libvirt"},
	{"libvirt.org/go/libvirtxml", module + "/internal/libvirt"},
	{"github.com/docker/docker", module + "/internal/docker"},
	{"github.com/docker/go-connections", module + "/internal/docker"},
	{"github.com/moby", module + "/internal/docker"},
}

// runtimePackages are what the CPI layer must not depend on: the runtimes,
// the hypervisor profiles and the settings deliveries they choose from.
var runtimePackages = []string{
	module + "/internal/libvirt",
	module + "/internal/docker",
	module + "/internal/hypervisor",
	module + "/internal/configdrive",
}

// listedPackage is what `go list -json` says of a package that we use.
type listedPackage struct {
	ImportPath   string
	Dir          string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

func (p listedPackage) allImports() []string {
	return slices.Concat(p.Imports, p.TestImports, p.XTestImports)
}

// under tells whether path is pkg or a package inside it.
func under(path, pkg string) bool { return path == pkg || strings.HasPrefix(path, pkg+"/") }

func TestLibrariesAreImportedOnlyByTheirAdapter(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, imp := range p.allImports() {
			for _, rule := range libraryOwners {
				if under(imp, rule.library) && !under(p.ImportPath, rule.owner) {
					t.Errorf("%s imports %s, which only %s/... may import", p.ImportPath, imp, rule.owner)
				}
			}
		}
	}
}

func TestTheCPILayerImportsNoRuntime(t *testing.T) {
	cpi := module + "/internal/cpi"
	for _, p := range listPackages(t) {
		if p.ImportPath != cpi {
			continue
		}
		// Deps is transitive: a runtime reached through another package
		// counts too. The tests' direct imports are checked as well.
		deps := slices.Concat(p.Deps, p.TestImports, p.XTestImports)
		slices.Sort(deps)
		for _, dep := range slices.Compact(deps) {
			for _, runtimePkg := range append(runtimePackages, librariesOf(libraryOwners)...) {
				if under(dep, runtimePkg) {
					t.Errorf("%s depends on %s: the CPI layer must reach runtimes only through its Runtime interface", cpi, dep)
				}
			}
		}
		return
	}
	t.Fatalf("%s is not in the module", cpi)
}

func librariesOf(rules []struct{ library, owner string }) []string {
	var libs []string
	for _, r := range rules {
		libs = append(libs, r.library)
	}
	return libs
}

func TestNoPackageHoldsMoreThanItsShareOfTheLines(t *testing.T) {
	perDir, total := goLinesPerDirectory(t, moduleRoot(t))
	dirs := make([]string, 0, len(perDir))
	for dir := range perDir {
		dirs = append(dirs, dir)
	}
	sort.Slice(dirs, func(i, j int) bool { return perDir[dirs[i]] > perDir[dirs[j]] })
	for _, dir := range dirs {
		share := float64(perDir[dir]) / float64(total)
		t.Logf("%6d lines %5.1f%%  %s", perDir[dir], 100*share, dir)
		if share > maxShare {
			t.Errorf("%s holds %d of the module's %d Go lines (%.1f%%), more than %.0f%%: split it", dir, perDir[dir], total, 100*share, 100*maxShare)
		}
	}
	t.Logf("%6d lines in all", total)
}

// goLinesPerDirectory counts the lines of every .go file (tests included)
// under root by the directory, i.e. the package, it is in.
func goLinesPerDirectory(t *testing.T, root string) (map[string]int, int) {
	t.Helper()
	perDir := map[string]int{}
	total := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		n, err := countLines(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		perDir[filepath.ToSlash(rel)] += n
		total += n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return perDir, total
}

// countLines counts newlines, as wc -l does.
func countLines(path string) (int, error) {
	raw, err := os.ReadFile(path)
	return bytes.Count(raw, []byte("\n")), err
}

// listPackages runs `go list -deps=false -json ./...` in the module root.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command(goTool(), "list", "-e", "-json", "./...")
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs
		}
		if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOMOD: %v (%q)", err, out)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// goTool is the go command that runs this test.
func goTool() string {
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Guard against a walk that finds nothing (a wrong root): the module has
// far more than one package.
func TestTheLineCountSeesTheModule(t *testing.T) {
	perDir, total := goLinesPerDirectory(t, moduleRoot(t))
	if len(perDir) < 10 || total < 1000 {
		t.Fatalf("counted %d lines in %d directories: %s", total, len(perDir), fmt.Sprint(perDir))
	}
}
