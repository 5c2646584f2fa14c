package verify

import (
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
)

// probes starts real probes for the tests, as cmd/memtrace does.
func probes(f Filter) (event.Source, error) {
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalHugetlb}
	cfg.LargeSharedMin = f.MinSize
	cfg.FallbackMin = min(cfg.FallbackMin, f.MinSize)
	cfg.Comm, cfg.CgroupID = f.Comm, f.CgroupID
	s, err := loader.Start(cfg, event.Naming{})
	if err != nil {
		return nil, err
	}
	return s, nil
}
