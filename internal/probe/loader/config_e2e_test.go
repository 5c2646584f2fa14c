package loader_test

import (
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestConfigReachesKernel: the load-time configuration (struct
// memtrace_config, written once into CFG) is what the programs run with.
// The comm filter drops another process's real failures in the kernel,
// and sample_first = 1 samples from the second event of a key on, where
// a configuration that did not arrive (zero) would send every event.
func TestConfigReachesKernel(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	cfg.Comm = "mt-cfg-in"
	cfg.SampleFirst = 1
	s, err := loader.Start(cfg, loader.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	privtest.RequireAttached(t, s.Hooks(), event.SignalAlloc)

	out, err := provoke.AllocFailures(10, provoke.WithComm("mt-cfg-out"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := provoke.AllocFailures(10, provoke.WithComm("mt-cfg-in"))
	if err != nil {
		t.Fatal(err)
	}
	aggs, err := s.AllocAggregates()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[int]uint64{}
	for _, a := range aggs {
		counts[int(a.Pid)] += a.Count
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	alloc := st[event.SignalAlloc]
	t.Logf("%s: filtered-out pid %d: %d (tracefs %d); kept pid %d: %d (tracefs %d); stats %+v",
		s.Hooks()[0].Hook, out.Pid, counts[out.Pid], out.Events, in.Pid, counts[in.Pid], in.Events, alloc)
	if counts[out.Pid] != 0 {
		t.Errorf("comm filter: %d failures of %s counted", counts[out.Pid], out.Comm)
	}
	if counts[in.Pid] != in.Events || in.Events < 10 {
		t.Errorf("counted %d failures of %s, tracefs %d", counts[in.Pid], in.Comm, in.Events)
	}
	if alloc.Sampled == 0 || alloc.Sampled >= alloc.Seen {
		t.Errorf("sample_first = 1 did not sample: %+v", alloc)
	}
}
