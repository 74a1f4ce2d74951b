package stemcell_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdomanski/iso9660"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/agentsettings"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/guestcheck"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/stemcell"
)

const (
	vsphereTestStemcell = "../../build/vsphere-test-stemcell.tgz"
	ovmfCode            = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars            = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	uefiBootTimeout     = 240 * time.Second
)

// requireOrSkip skips outside the project's test command (scripts/test.sh
// sets BOSH_LIBVIRT_CPI_TESTS, CI sets CI) and fails loudly inside it.
func requireOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" || os.Getenv("BOSH_LIBVIRT_CPI_TESTS") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestVSphereTestStemcellBootsUEFI reads the vSphere test stemcell (make
// vsphere-test-stemcell) through OpenFormats as create_stemcell will, turns
// its VMDK stream into qcow2 as the runtime will on the libvirt host, and
// boots it with OVMF on a q35 machine under TCG, no CPI involved, until the
// test agent's first report on the serial console: proof that the image
// this package accepts is one UEFI boots. The settings come as vSphere
// stemcells read them: the file ENV on an ISO9660 disc in the SATA CD-ROM
// (/dev/sr0), as the VirtualBox CPI writes it; the first report must be the
// agent's settings read from there, with the agent ID of the disc.
func TestVSphereTestStemcellBootsUEFI(t *testing.T) {
	if _, err := os.Stat(vsphereTestStemcell); err != nil {
		requireOrSkip(t, "no vSphere test stemcell at %s: run `make vsphere-test-stemcell` (scripts/test.sh does)", vsphereTestStemcell)
	}
	for _, tool := range []string{"qemu-img", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireOrSkip(t, "%s is not installed (scripts/host.sh installs qemu-utils and qemu-system-x86)", tool)
		}
	}
	for _, fd := range []string{ovmfCode, ovmfVars} {
		if _, err := os.Stat(fd); err != nil {
			requireOrSkip(t, "no %s: apt-get install -y ovmf (scripts/host.sh installs it)", fd)
		}
	}
	dir := t.TempDir()
	qcow2 := importAsQcow2(t, dir)
	vars := filepath.Join(dir, "OVMF_VARS.fd")
	copyFile(t, ovmfVars, vars)
	serial := filepath.Join(dir, "serial.log")
	envDisc := writeEnvDisc(t, dir, "agent-uefi")

	ctx, cancel := context.WithTimeout(context.Background(), uefiBootTimeout)
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "512", "-smp", "1",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-drive", "file="+qcow2+",format=qcow2,if=virtio",
		"-drive", "file="+envDisc+",format=raw,media=cdrom,if=ide", // q35: the ICH9 AHCI controller, sr0
		"-serial", "file:"+serial, "-display", "none", "-no-reboot", "-nic", "none")
	var stderr strings.Builder
	qemu.Stderr = &stderr
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatalf("starting qemu-system-x86_64: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- qemu.Wait() }()
	defer func() {
		_ = qemu.Process.Kill()
		<-exited
	}()

	first, console := waitForFirstReport(ctx, serial, exited)
	if first == nil {
		t.Fatalf("no test agent report on the serial console within %s of starting QEMU (UEFI: OVMF -> syslinux.efi -> kernel)\nqemu stderr: %s\nconsole:\n%s",
			time.Since(start).Round(time.Second), stderr.String(), tail(console, 3000))
	}
	t.Logf("FIGURE vSphere test stemcell, UEFI under TCG: first test agent line %s after QEMU started (guest uptime %.1f s): %s %s",
		time.Since(start).Round(100*time.Millisecond), first.Uptime, first.Event, first.Message)
	if first.Event != guestcheck.EventSettings || first.Via != "cdrom-env" || first.Device != "/dev/sr0" || first.AgentID != "agent-uefi" {
		t.Errorf("first report %+v; want the settings of agent-uefi read from the env file in /dev/sr0\nconsole:\n%s", *first, tail(console, 3000))
	}
	if !strings.Contains(console, "BdsDxe") {
		t.Errorf("the console shows no OVMF boot manager line: was it booted by UEFI?\n%s", tail(console, 2000))
	}
}

// writeEnvDisc writes the settings disc of a vSphere stemcell: an ISO9660
// image holding one file, ENV, the agent settings as JSON.
func writeEnvDisc(t *testing.T, dir, agentID string) string {
	t.Helper()
	settings, err := json.Marshal(agentsettings.New(agentID, "vm-uefi", config.Agent{Mbus: "https://mbus:p@0.0.0.0:6868"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	w, err := iso9660.NewWriter()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cleanup()
	if err := w.AddFile(bytes.NewReader(settings), "ENV"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "env.iso")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := w.WriteTo(f, "cdrom"); err != nil {
		t.Fatal(err)
	}
	return path
}

// importAsQcow2 opens the stemcell's image as a vSphere one and converts the
// VMDK it streams to a qcow2 file, what the runtime asks libvirt to do.
func importAsQcow2(t *testing.T, dir string) string {
	t.Helper()
	imagePath, manifest, err := devenv.UnpackStemcell(vsphereTestStemcell, dir)
	if err != nil {
		t.Fatal(err)
	}
	if manifest.CloudProperties["infrastructure"] != "vsphere" {
		t.Fatalf("stemcell.MF's infrastructure is %v, not vsphere", manifest.CloudProperties["infrastructure"])
	}
	img, err := stemcell.OpenFormats(imagePath, stemcell.VSphereFormats)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Format != stemcell.FormatVMDK || img.Firmware != stemcell.FirmwareEFI || img.VirtualSize != 64<<20 {
		t.Fatalf("the vSphere test stemcell reads as %s, firmware %s, %d bytes; want vmdk, efi, 64 MiB", img.Format, img.Firmware, img.VirtualSize)
	}
	vmdk := filepath.Join(dir, "disk.vmdk")
	out, err := os.Create(vmdk)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(out, img.Reader)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != img.Size {
		t.Fatalf("streaming the VMDK: %d of %d bytes: %v", n, img.Size, err)
	}
	qcow2 := filepath.Join(dir, "disk.qcow2")
	if b, err := exec.Command("qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", vmdk, qcow2).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, b)
	}
	return qcow2
}

// waitForFirstReport polls the serial log until it holds a report, QEMU
// exits or ctx ends; it returns the report (nil if none) and the console.
func waitForFirstReport(ctx context.Context, serial string, exited <-chan error) (*guestcheck.Report, string) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		data, _ := os.ReadFile(serial)
		if reports := guestcheck.ParseReports(string(data)); len(reports) > 0 {
			return &reports[0], string(data)
		}
		select {
		case <-ctx.Done():
			return nil, string(data)
		case <-exited:
			data, _ = os.ReadFile(serial)
			if reports := guestcheck.ParseReports(string(data)); len(reports) > 0 {
				return &reports[0], string(data)
			}
			return nil, string(data)
		case <-tick.C:
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
