package loader_test

import (
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// TestStartNamesRecords: what a session reports comes out named for the
// running kernel, without the caller building any table. Failures are
// injected through the session's own program (GFP_ATOMIC, order 3,
// migratetype 0), so the names are known.
func TestStartNamesRecords(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	cfg.SampleFirst = 0
	tasks := 0
	s, err := loader.Start(cfg, loader.Naming{Stacks: true, Tasks: func(tk *event.Task) { tasks++; tk.Cgroup = "/named" }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.Decoding()
	if d.GFPSource == "" || d.MigratetypeSource == "" || d.ContextSource == "" {
		t.Errorf("decoding sources missing: %+v", d)
	}
	gfpAtomic := uint64(0)
	if s.GFP() == nil {
		t.Fatalf("no GFP table on this kernel: %v", d.Warnings)
	}
	for _, name := range []string{"__GFP_HIGH", "__GFP_KSWAPD_RECLAIM"} {
		bit, ok := s.GFP().Bit(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		gfpAtomic |= bit
	}
	if err := s.InjectAllocFailures(3, 3, gfpAtomic, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for ev := range s.Events() {
		a := ev.AllocFailure
		if a == nil || a.Order != 3 {
			continue
		}
		n++
		if a.GFP == "" || a.GFPClass != "atomic" || a.MigratetypeName != "Unmovable" || ev.Cgroup != "/named" {
			t.Errorf("event not named: gfp %q class %q migratetype %q cgroup %q", a.GFP, a.GFPClass, a.MigratetypeName, ev.Cgroup)
		}
	}
	if n == 0 {
		t.Fatal("no injected event came out")
	}
	aggs, err := s.AllocAggregates()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range aggs {
		if a.Order == 3 && (a.GFPClass != "atomic" || a.MigratetypeName != "Unmovable" || a.Cgroup != "/named") {
			t.Errorf("aggregate not named: %+v", a)
		}
	}
	if tasks == 0 {
		t.Error("the injected task namer was never called")
	}
}
