package loader_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// TestAtomicDemandLoopback counts the atomic demand of real network
// traffic over loopback, on each tracepoint hook, against tracefs: every
// kmem:mm_page_alloc hit of the same threads without
// __GFP_DIRECT_RECLAIM, over the same window, summed as pages per bucket
// (with and without __GFP_HIGH). Both sides filter by the traffic's comm,
// so nothing else on the host is counted by either.
func TestAtomicDemandLoopback(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for _, c := range []struct {
		name    string
		disable []string
	}{
		{"tp_btf", []string{"fexit", "tracepoint"}},
		{"tracepoint", []string{"fexit", "tp_btf"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			comm := "mt-atomic-" + c.name[:2]
			cfg := loader.DefaultConfig()
			cfg.Signals = []event.Signal{event.SignalAlloc}
			cfg.DisableHooks = c.disable
			cfg.Comm = comm
			cfg.AtomicSampleEvery = 64
			s, err := loader.Start(cfg, loader.Naming{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			privtest.RequireAttached(t, s.Hooks(), event.SignalAlloc)
			if err := s.AtomicDemandCounted(); err != nil {
				t.Fatal(err)
			}
			tab := s.GFP()
			dr, ok1 := tab.Bit("__GFP_DIRECT_RECLAIM")
			high, ok2 := tab.Bit("__GFP_HIGH")
			if !ok1 || !ok2 {
				t.Fatalf("GFP table (%s) lacks __GFP_DIRECT_RECLAIM or __GFP_HIGH", tab.Source())
			}
			var marks []event.AtomicDemand
			mark := func() {
				d, err := s.AtomicDemand()
				if err != nil {
					t.Error(err)
				}
				marks = append(marks, d)
			}
			rep, err := provoke.LoopbackTraffic(32<<20, fmt.Sprintf("!(gfp_flags & %d)", dr), mark, provoke.WithComm(comm))
			if err != nil {
				t.Fatal(err)
			}
			if len(marks) != 2 {
				t.Fatalf("%d readings, want 2", len(marks))
			}
			got := marks[1].Sub(marks[0])
			var want event.AtomicDemand
			orders := map[int]int{}
			for _, a := range rep.Allocs {
				mask, err := parseGFP(tab, a.GFP)
				if err != nil {
					t.Fatal(err)
				}
				if mask&dr != 0 {
					t.Fatalf("tracefs filter let through a sleeping allocation: %s", a.GFP)
				}
				orders[a.Order]++
				if mask&high != 0 {
					want.HighPages += 1 << a.Order
				} else {
					want.OtherPages += 1 << a.Order
				}
			}
			t.Logf("%d bytes over loopback: memtrace %+v, tracefs %+v (%d allocations by order %v)", rep.Bytes, got, want, len(rep.Allocs), orders)
			if got != want || want.Total() == 0 {
				t.Errorf("atomic demand: memtrace %+v, tracefs %+v", got, want)
			}
			src, err := s.AtomicSources()
			if err != nil {
				t.Fatal(err)
			}
			var sampled uint64
			for _, x := range src {
				if x.Comm != comm {
					t.Errorf("sampled demand of %q, filtered to %q", x.Comm, comm)
				}
				sampled += x.Samples
				t.Logf("sampled source: %s pid %d in %s, __GFP_HIGH %v: %d samples, %d pages", x.Comm, x.Pid, x.Context, x.High, x.Samples, x.SampledPages)
			}
			// One in every AtomicSampleEvery of each CPU's atomic
			// allocations: the thread's are split over the CPUs it ran on.
			n, every, cpus := uint64(len(rep.Allocs)), uint64(cfg.AtomicSampleEvery), uint64(runtime.NumCPU())
			if sampled > n/every || sampled+cpus < n/every {
				t.Errorf("%d samples of %d atomic allocations on %d CPUs, want one in %d per CPU", sampled, n, cpus, every)
			}
		})
	}
}

// parseGFP turns the kernel's printed names back into the mask.
func parseGFP(tab *gfp.Table, s string) (uint64, error) {
	masks := map[string]uint64{}
	for _, e := range tab.Entries() {
		if _, dup := masks[e.Name]; !dup {
			masks[e.Name] = e.Mask
		}
	}
	var m uint64
	for _, name := range strings.Split(s, "|") {
		if v, ok := masks[name]; ok {
			m |= v
			continue
		}
		v, err := strconv.ParseUint(name, 0, 64)
		if err != nil && name != "none" {
			return 0, fmt.Errorf("unknown GFP name %q in %q", name, s)
		}
		m |= v
	}
	return m, nil
}

// TestZoneStateAtProvokedFailure: a real allocation failure (a memory
// cgroup refusing the charge) carries the zones read just after it, and
// the verdict for it: with memory free, neither below the watermark nor
// fragmented.
func TestZoneStateAtProvokedFailure(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	cfg.Comm = "mt-zonestate"
	s, err := loader.Start(cfg, loader.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := provoke.AllocFailures(10, provoke.WithComm(cfg.Comm))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	var evs []*event.AllocFailure
	var mono []uint64
	for ev := range s.Events() {
		if ev.AllocFailure != nil && int(ev.Pid) == rep.Pid {
			evs = append(evs, ev.AllocFailure)
			mono = append(mono, ev.MonoNs)
		}
	}
	if len(evs) < 10 {
		t.Fatalf("%d failure events, want 10", len(evs))
	}
	for i, a := range evs {
		z := a.ZoneState
		if z == nil || len(z.Zones) == 0 {
			t.Fatalf("failure %d (order %d %s) has no zone state: %+v", i, a.Order, a.GFP, z)
		}
		if i == 0 {
			if z.ReadAfterNs < 0 {
				t.Errorf("the first failure's zones were read %d ns before it", -z.ReadAfterNs)
			}
			t.Logf("order %d %s: read %d µs after: %s", a.Order, a.GFP, z.ReadAfterNs/1000, z.Summary)
		}
		// A later failure within the interval reuses the reading.
		if i > 0 && mono[i] < mono[0]+uint64(cfg.ZoneStateEvery.Nanoseconds()) && !z.ReadAt.Equal(evs[0].ZoneState.ReadAt) {
			t.Errorf("failure %d, %v after the first, read the zones again", i, mono[i]-mono[0])
		}
		if z.Verdict != event.VerdictNeither || !strings.HasPrefix(z.Summary, "neither") {
			t.Errorf("failure %d of a cgroup charge judged %s: %s", i, z.Verdict, z.Summary)
		}
	}
}
