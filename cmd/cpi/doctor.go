package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/config"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/doctor"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt"
	"github.com/bosh-libvirt-cpi/bosh-libvirt-cpi/internal/libvirt/host"
)

// runDoctor checks this host against a cpi.json; exit 1 when anything fails.
func runDoctor(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("cpi doctor", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("configPath", "", "path to cpi.json")
	sweep := flags.Bool("sweep", false, "remove the orphans of create calls that never finished (without it they are only listed)")
	orphanAge := flags.Duration("orphanAge", libvirt.DefaultOrphanAge, "how old an unfinished creation must be to count as an orphan")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "usage: cpi doctor [-sweep] [-orphanAge 15m] -configPath /path/to/cpi.json")
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err == nil {
		// A runtime or hypervisor this CPI lacks is a config mistake too.
		_, err = runtimeSelector(nil)(cfg)
	}
	if err != nil {
		fmt.Fprintf(stdout, "[FAIL] config: %v\n       fix: correct the key named above in %s\n", err, *configPath)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	findings := doctor.Run(ctx, cfg, host.Probe)
	if cfg.Runtime == config.RuntimeLibvirt {
		log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		findings = append(findings, libvirt.OrphanFindings(ctx, cfg, log, *orphanAge, *sweep)...)
	}
	doctor.Print(stdout, findings)
	if doctor.Failed(findings) {
		fmt.Fprintln(stdout, "doctor: problems found; the fixes are listed above")
		return 1
	}
	if slices.ContainsFunc(findings, func(f doctor.Finding) bool { return f.Status == doctor.Warn }) {
		fmt.Fprintln(stdout, "doctor: this host is ready for the CPI; see the warnings above")
		return 0
	}
	fmt.Fprintln(stdout, "doctor: this host is ready for the CPI")
	return 0
}
