package devenv

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Manifest is the part of stemcell.MF the tools use.
type Manifest struct {
	Name            string         `yaml:"name"`
	Version         string         `yaml:"version"`
	APIVersion      int            `yaml:"api_version"`
	CloudProperties map[string]any `yaml:"cloud_properties"`
}

// UnpackTestStemcell unpacks the test stemcell that `make test-stemcell`
// builds under the module root into dir; it returns the image path and
// the stemcell's cloud_properties.
func UnpackTestStemcell(root, dir string) (string, map[string]any, error) {
	tarball := filepath.Join(root, "build", "test-stemcell.tgz")
	if _, err := os.Stat(tarball); err != nil {
		return "", nil, fmt.Errorf("no test stemcell at %s: run `make test-stemcell` (scripts/test.sh does)", tarball)
	}
	image, manifest, err := UnpackStemcell(tarball, dir)
	if err != nil {
		return "", nil, fmt.Errorf("unpacking the test stemcell: %w", err)
	}
	return image, manifest.CloudProperties, nil
}

// UnpackStemcell extracts stemcell.MF and image from a stemcell tarball into
// dir, as bosh create-env does before create_stemcell; it returns the path
// of `image` and the manifest.
func UnpackStemcell(tarball, dir string) (string, Manifest, error) {
	f, err := os.Open(tarball)
	if err != nil {
		return "", Manifest{}, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", Manifest{}, fmt.Errorf("%s: %w", tarball, err)
	}
	tr := tar.NewReader(gz)
	var manifest Manifest
	imagePath := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", Manifest{}, fmt.Errorf("%s: %w", tarball, err)
		}
		switch path.Clean(hdr.Name) {
		case "stemcell.MF":
			raw, err := io.ReadAll(tr)
			if err != nil {
				return "", Manifest{}, err
			}
			if err := yaml.Unmarshal(raw, &manifest); err != nil {
				return "", Manifest{}, fmt.Errorf("stemcell.MF: %w", err)
			}
		case "image":
			imagePath = filepath.Join(dir, "image")
			if err := writeFile(imagePath, tr); err != nil {
				return "", Manifest{}, err
			}
		}
	}
	if imagePath == "" || manifest.Name == "" {
		return "", Manifest{}, fmt.Errorf("%s has no image or no stemcell.MF", tarball)
	}
	return imagePath, manifest, nil
}

func writeFile(path string, r io.Reader) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
