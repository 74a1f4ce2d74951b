package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// A plain baseline is what create_vm and delete_vm cost done by hand,
// straight through libvirt: the same volumes and the same domain as the
// CPI made, defined and started with virsh; then destroyed, undefined and
// its volumes deleted. Measured in the same run as the CPI's figures, the
// ratio of the two is what is compared: the machine is noisy.

// plainVM is a copy, in files, of what the CPI made for one VM.
type plainVM struct {
	name    string
	domain  string   // domain XML file
	volumes []string // volume XML files
}

// Lines the copy must not share with the CPI's VM.
var (
	uuidLine = regexp.MustCompile(`(?m)^\s*<uuid>[^<]*</uuid>\n`)
	macLine  = regexp.MustCompile(`(?m)^\s*<mac address=[^>]*/>\n`)
	keyLine  = regexp.MustCompile(`(?m)^\s*<key>[^<]*</key>\n`)
)

// copyVM writes, under dir, the XML of cid's domain and volumes with cid
// replaced by name: an equivalent VM that shares nothing with it.
func (b bench) copyVM(cid, name, dir string) (plainVM, error) {
	p := plainVM{name: name}
	domain, err := b.env.Virsh("dumpxml", "--inactive", cid)
	if err != nil {
		return p, err
	}
	domain = macLine.ReplaceAllString(uuidLine.ReplaceAllString(domain, ""), "")
	p.domain = filepath.Join(dir, name+".xml")
	if err := os.WriteFile(p.domain, []byte(strings.ReplaceAll(domain, cid, name)), 0o644); err != nil {
		return p, err
	}
	vols, err := b.env.Volumes()
	if err != nil {
		return p, err
	}
	for _, vol := range vols {
		if !strings.HasPrefix(vol, cid) {
			continue
		}
		doc, err := b.env.Virsh("vol-dumpxml", "--pool", b.env.Pool, vol)
		if err != nil {
			return p, err
		}
		path := filepath.Join(dir, strings.ReplaceAll(vol, cid, name)+".vol.xml")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(keyLine.ReplaceAllString(doc, ""), cid, name)), 0o644); err != nil {
			return p, err
		}
		p.volumes = append(p.volumes, path)
	}
	if len(p.volumes) == 0 {
		return p, fmt.Errorf("no volumes of VM %s in pool %s to copy", cid, b.env.Pool)
	}
	return p, nil
}

// create makes the copy's volumes, defines and starts its domain.
func (p plainVM) create(b bench) (time.Duration, error) {
	start := time.Now()
	for _, vol := range p.volumes {
		if _, err := b.env.Virsh("vol-create", "--pool", b.env.Pool, vol); err != nil {
			return 0, err
		}
	}
	if _, err := b.env.Virsh("define", p.domain); err != nil {
		return 0, err
	}
	if _, err := b.env.Virsh("start", p.name); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// remove destroys and undefines the copy's domain and deletes its volumes.
func (p plainVM) remove(b bench) (time.Duration, error) {
	start := time.Now()
	if _, err := b.env.Virsh("destroy", p.name); err != nil {
		return 0, err
	}
	if _, err := b.env.Virsh("undefine", p.name); err != nil {
		return 0, err
	}
	for _, vol := range p.volumes {
		name := strings.TrimSuffix(filepath.Base(vol), ".vol.xml")
		if _, err := b.env.Virsh("vol-delete", "--pool", b.env.Pool, name); err != nil {
			return 0, err
		}
	}
	took := time.Since(start)
	// QEMU wrote the copy's console where the CPI's VM had its own.
	return took, os.RemoveAll(filepath.Join(b.env.StoreDir, "console", p.name+".log"))
}

// ratio prints ours against its plain baseline.
func ratio(figure string, ours, plain time.Duration, target string) {
	fmt.Printf("%-44s %10.2f x   %s (%.3f s vs %.3f s plain)\n", figure, float64(ours)/float64(plain), target, ours.Seconds(), plain.Seconds())
}
