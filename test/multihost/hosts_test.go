package multihost

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/devenv"
)

// host is one libvirt host of the test: a private virtlogd and libvirtd in
// network and mount namespaces of their own, started by
// test/createenv/in-namespace.sh. Its socket lives in the scratch directory
// bind-mounted over /run/libvirt in the namespace, so this process (and the
// CPI it runs) reaches it by path from outside; the host's bridges exist
// only in its network namespace.
type host struct {
	name    string
	scratch string
	uri     string
	cmd     *exec.Cmd
	// keepAlive is in-namespace.sh's command's stdin: closing it ends the
	// command, and the script then removes its domains and stops its daemons.
	keepAlive io.WriteCloser
	exited    chan error
	// listensTLS: its libvirtd was started with --listen (a TLS port).
	listensTLS bool
}

// startHost starts a host and waits until its libvirtd answers. A tlsDir
// (cacert.pem, servercert.pem, serverkey.pem) makes its libvirtd listen on
// TLS too, inside its network namespace; "" leaves it on its socket only.
func startHost(moduleRoot, name, bridgeIP, tlsDir string) (*host, error) {
	scratch, err := os.MkdirTemp("", "bosh-libvirt-cpi-multihost-"+name+"-")
	if err != nil {
		return nil, err
	}
	h := &host{name: name, scratch: scratch, exited: make(chan error, 1),
		uri: "qemu+unix:///system?socket=" + filepath.Join(scratch, "ns/run/libvirt/libvirt-sock")}
	h.cmd = exec.Command("unshare", "--net", "--mount", "--propagation", "private",
		filepath.Join(moduleRoot, "test/createenv/in-namespace.sh"), scratch, bridgeIP,
		"sh", "-c", "echo ready; exec cat >/dev/null")
	h.cmd.Stderr = os.Stderr
	if h.listensTLS = tlsDir != ""; h.listensTLS {
		h.cmd.Env = append(os.Environ(), "LIBVIRTD_TLS_DIR="+tlsDir)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if h.keepAlive, err = h.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := h.cmd.Start(); err != nil {
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("starting host %s: %w", name, err)
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	go func() { h.exited <- h.cmd.Wait() }()
	select {
	case line := <-ready:
		if line == "ready" {
			return h, nil
		}
		h.stop()
		return nil, fmt.Errorf("host %s: in-namespace.sh ended before its libvirtd answered", name)
	case <-time.After(90 * time.Second):
		h.stop()
		return nil, fmt.Errorf("host %s: libvirtd did not answer within 90 s", name)
	}
}

// stop ends the host: in-namespace.sh destroys its domains and stops both
// daemons, then the scratch directory goes.
func (h *host) stop() {
	h.keepAlive.Close()
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
	}
	os.RemoveAll(h.scratch)
}

// inNetNamespace is a command prefix that runs a command in the host's
// network namespace, where its libvirtd's TLS port is (as 127.0.0.1).
func (h *host) inNetNamespace() []string {
	return []string{"nsenter", "--target", strconv.Itoa(h.cmd.Process.Pid), "--net"}
}

func (h *host) pidFile() string { return filepath.Join(h.scratch, "ns/run/libvirt/libvirtd.pid") }

// killLibvirtd takes the host's libvirtd down with SIGKILL, as a crash or a
// power cut does; its guests keep running.
func (h *host) killLibvirtd() error {
	raw, err := os.ReadFile(h.pidFile())
	if err != nil {
		return fmt.Errorf("host %s: reading libvirtd's pid: %w", h.name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("host %s: libvirtd pid file holds %q", h.name, raw)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("host %s: killing libvirtd %d: %w", h.name, pid, err)
	}
	for i := 0; i < 100 && !devenv.ProcessGone(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !devenv.ProcessGone(pid) {
		return fmt.Errorf("host %s: libvirtd %d still runs 5 s after SIGKILL", h.name, pid)
	}
	return nil
}

// startLibvirtd starts the host's libvirtd again inside its namespaces, as
// in-namespace.sh first did, and waits until it answers.
func (h *host) startLibvirtd() error {
	target := strconv.Itoa(h.cmd.Process.Pid)
	args := []string{"--target", target, "--mount", "--net", "libvirtd", "-d", "-p", "/run/libvirt/libvirtd.pid"}
	if h.listensTLS {
		args = append(args, "--listen")
	}
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("host %s: starting libvirtd again: %v: %s", h.name, err, out)
	}
	for i := 0; i < 60; i++ {
		if exec.Command("virsh", "-c", h.uri, "version").Run() == nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("host %s: libvirtd did not answer within 30 s of its restart", h.name)
}
