package release

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// packageSpec is the part of a packages/<name>/spec these tests read.
type packageSpec struct {
	Name          string   `yaml:"name"`
	Dependencies  []string `yaml:"dependencies"`
	Files         []string `yaml:"files"`
	ExcludedFiles []string `yaml:"excluded_files"`
}

func readPackageSpec(t *testing.T, name string) packageSpec {
	var spec packageSpec
	readYAML(t, filepath.Join(repoRoot(t), "packages", name, "spec"), &spec)
	if spec.Name != name {
		t.Fatalf("packages/%s/spec names itself %q", name, spec.Name)
	}
	return spec
}

// TestCPIPackageSpecCoversEveryCompiledFile: bosh packages only the files
// the spec's globs match, and a file they miss shows up as a compile error on
// the director, long after create-release succeeded. The globs are checked
// against what `go list` says ./cmd/cpi compiles from, for linux/amd64.
func TestCPIPackageSpecCoversEveryCompiledFile(t *testing.T) {
	spec := readPackageSpec(t, "libvirt_cpi")
	if len(spec.Dependencies) != 1 || spec.Dependencies[0] != "golang-1-linux" {
		t.Errorf("libvirt_cpi depends on %v, want [golang-1-linux]", spec.Dependencies)
	}
	required := append(compiledModuleFiles(t), "go.mod", "go.sum", "vendor/modules.txt",
		"vendor/github.com/cloudfoundry/bosh-cpi-go/rpc/json_dispatcher.go")
	for _, file := range required {
		if !packagedBy(spec, file) {
			t.Errorf("%s is compiled into the CPI but packages/libvirt_cpi/spec does not package it", file)
		}
	}
}

// compiledModuleFiles lists, relative to the module root, the Go, assembly and
// embedded files of this module that ./cmd/cpi is built from.
func compiledModuleFiles(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-e", "-deps",
		"-f", `{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .SFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}`, "./cmd/cpi")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./cmd/cpi: %v", err)
	}
	var files []string
	for _, line := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, line)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	if len(files) == 0 {
		t.Fatal("go list found no files for ./cmd/cpi")
	}
	return files
}

func packagedBy(spec packageSpec, file string) bool {
	return matchesAny(spec.Files, file) && !matchesAny(spec.ExcludedFiles, file)
}

func matchesAny(globs []string, file string) bool {
	for _, glob := range globs {
		if globRegexp(glob).MatchString(file) {
			return true
		}
	}
	return false
}

// globRegexp translates a bosh package glob (doublestar: "**" spans
// directories, also none; "*" and "?" stay within one) into a regexp.
func globRegexp(glob string) *regexp.Regexp {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch {
		case strings.HasPrefix(glob[i:], "**/"):
			re.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(glob[i:], "**"):
			re.WriteString(".*")
			i++
		case glob[i] == '*':
			re.WriteString("[^/]*")
		case glob[i] == '?':
			re.WriteString("[^/]")
		default:
			re.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String())
}

func TestGlobRegexp(t *testing.T) {
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"internal/**/*.go", "internal/config/config.go", true},
		{"internal/**/*.go", "internal/a/b/c.go", true},
		{"internal/**/*.go", "internal/top.go", true},
		{"internal/**/*.go", "cmd/cpi/main.go", false},
		{"internal/**/*.go", "internal/config/config.json", false},
		{"vendor/**/*", "vendor/modules.txt", true},
		{"vendor/**/*", "vendor/github.com/x/y/z.s", true},
		{"go.mod", "go.mod", true},
		{"go.mod", "go.sum", false},
		{"cmd/*/main.go", "cmd/cpi/main.go", true},
		{"cmd/*/main.go", "cmd/cpi/sub/main.go", false},
		{"golang-1-linux/go*.linux-amd64.tar.gz", "golang-1-linux/go1.26.8.linux-amd64.tar.gz", true},
		{"golang-1-linux/go?.tar.gz", "golang-1-linux/go1.tar.gz", true},
	}
	for _, tt := range tests {
		if got := globRegexp(tt.glob).MatchString(tt.path); got != tt.want {
			t.Errorf("glob %q on %q = %v, want %v", tt.glob, tt.path, got, tt.want)
		}
	}
}

// TestGoToolchainPackageIsNewEnoughForGoMod: the golang-1-linux package
// compiles with GOTOOLCHAIN=local, so a go.mod asking for a newer Go than the
// one scripts/create-release.sh packages fails on the director.
func TestGoToolchainPackageIsNewEnoughForGoMod(t *testing.T) {
	root := repoRoot(t)
	script, err := os.ReadFile(filepath.Join(root, "scripts", "create-release.sh"))
	if err != nil {
		t.Fatal(err)
	}
	packaged := regexp.MustCompile(`GO_VERSION=\$\{GO_VERSION:-([0-9.]+)\}`).FindSubmatch(script)
	if packaged == nil {
		t.Fatal("scripts/create-release.sh sets no default GO_VERSION")
	}
	goMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	required := regexp.MustCompile(`(?m)^go ([0-9.]+)$`).FindSubmatch(goMod)
	if required == nil {
		t.Fatal("go.mod has no go line")
	}
	if compareGoVersions(string(packaged[1]), string(required[1])) < 0 {
		t.Errorf("the release packages Go %s but go.mod needs go %s", packaged[1], required[1])
	}
	spec := readPackageSpec(t, "golang-1-linux")
	blob := "golang-1-linux/go" + string(packaged[1]) + ".linux-amd64.tar.gz"
	if !packagedBy(spec, blob) {
		t.Errorf("packages/golang-1-linux/spec does not package %s", blob)
	}
}

// compareGoVersions compares dotted Go versions such as 1.26 and 1.26.8.
func compareGoVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func TestCompareGoVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.26.8", "1.26.8", 0},
		{"1.26.8", "1.26", 1},
		{"1.26", "1.26.1", -1},
		{"1.27.0", "1.26.9", 1},
		{"1.9", "1.10", -1},
	}
	for _, tt := range tests {
		if got := compareGoVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareGoVersions(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
