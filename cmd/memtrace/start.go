package main

import (
	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/command/doctor"
	"github.com/memtrace/memtrace/internal/command/serve"
	"github.com/memtrace/memtrace/internal/command/verify"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
)

// The tracing commands (capture, watch, serve, verify) are handed a start
// function instead of importing the loader: this file is where they meet
// it. Each command calls its function when it is ready for the probes
// (capture after its "before" snapshot, verify once the command's cgroup
// exists), asking for the names it shows.

// startProbes starts the probes of cfg.
func startProbes(cfg loader.Config) func(event.Naming) (event.Source, error) {
	return func(n event.Naming) (event.Source, error) {
		s, err := loader.Start(cfg, n)
		if err != nil {
			return nil, err // not a nil *Session in a non-nil interface
		}
		return s, nil
	}
}

// startServe starts the probes of cfg for serve, which also labels
// counters with the kernel's GFP and migratetype names.
func startServe(cfg loader.Config) func(event.Naming) (serve.Session, error) {
	return func(n event.Naming) (serve.Session, error) {
		s, err := loader.Start(cfg, n)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// verifyProbes starts the probes verify asks for: huge-page calls and
// faults on huge pages that got none.
func verifyProbes(f verify.Filter) (event.Source, error) {
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalHugetlb, event.SignalHugefault}
	cfg.LargeSharedMin = f.MinSize
	cfg.FallbackMin = min(cfg.FallbackMin, f.MinSize)
	cfg.Comm, cfg.CgroupID = f.Comm, f.CgroupID
	return startProbes(cfg)(event.Naming{})
}

// measureProbes starts what `doctor --measure` reads: the allocation
// family, with atomic demand sampled finer than by default for its
// sources (the cost lasts only as long as the measurement), and the
// reclaim family for the node reclaim stalls the zone_reclaim_mode
// verdict weighs.
func measureProbes() (doctor.MeasureSession, error) {
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc, event.SignalReclaim}
	cfg.AtomicSampleEvery = 64
	s, err := loader.Start(cfg, event.Naming{})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// captureConfig records in the document how the capture was asked for.
func captureConfig(cfg loader.Config, cgroupPath string) capture.Config {
	c := capture.Config{
		AllocHook: cfg.AllocHook, Pid: cfg.Pid, Comm: cfg.Comm, Cgroup: cgroupPath,
		SampleFirst: cfg.SampleFirst,
	}
	for _, s := range cfg.Signals {
		c.Signals = append(c.Signals, string(s))
	}
	return c
}
