package loader_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/probe/tracefs"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// stallHookCases force each hook type of the stall families in turn.
var stallHookCases = []struct {
	name    string
	disable []string
	prefix  map[event.Signal]string
}{
	{"tp_btf", []string{"tracepoint"}, map[event.Signal]string{
		event.SignalReclaim: "tp_btf/mm_vmscan_*", event.SignalCompaction: "tp_btf/mm_compaction_*",
	}},
	{"tracepoint", []string{"tp_btf"}, map[event.Signal]string{
		event.SignalReclaim: "tracepoint/vmscan/", event.SignalCompaction: "tracepoint/compaction/",
	}},
}

func startStalls(t *testing.T, disable []string, prefix map[event.Signal]string, sigs ...event.Signal) *loader.Session {
	t.Helper()
	cfg := loader.DefaultConfig()
	cfg.Signals = sigs
	cfg.DisableHooks = disable
	return startChecked(t, cfg, loader.Naming{}, prefix)
}

// startStallStacks starts sig's family with a 1 ns threshold and stacks:
// every stall is sent with its kernel stack, symbolized.
func startStallStacks(t *testing.T, disable []string, prefix map[event.Signal]string, sig event.Signal) *loader.Session {
	t.Helper()
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{sig}
	cfg.DisableHooks = disable
	cfg.StallThreshold = time.Nanosecond
	cfg.StallStacks = true
	return startChecked(t, cfg, loader.Naming{Stacks: true, Symbols: true}, prefix)
}

// startChecked starts a session, closed at the test's end, whose every
// hook is attached with the prefix its signal must have.
func startChecked(t *testing.T, cfg loader.Config, n loader.Naming, prefix map[event.Signal]string) *loader.Session {
	t.Helper()
	s, err := loader.Start(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, h := range s.Hooks() {
		if !h.Attached || !strings.HasPrefix(h.Hook, prefix[h.Signal]) {
			t.Fatalf("%s: hook %q attached=%v, want %q (rejected: %+v)", h.Signal, h.Hook, h.Attached, prefix[h.Signal], h.Rejected)
		}
	}
	return s
}

// TestMemcgReclaimCounts: a process reading a file four times larger than
// its memory cgroup's limit stalls in memcg reclaim; memtrace counts every
// stall of that process exactly as tracefs counts the begin and end events
// of its thread, with order 0 (what the event reports), pages reclaimed
// and a histogram holding every stall.
func TestMemcgReclaimCounts(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for i, c := range stallHookCases {
		t.Run(c.name, func(t *testing.T) {
			s := startStalls(t, c.disable, c.prefix, event.SignalReclaim)
			collected := drain(s)
			rep, err := provoke.MemcgReclaim(provoke.WithComm("mt-memcg-" + strconv.Itoa(i)))
			if errors.Is(err, errors.ErrUnsupported) {
				t.Skipf("cannot provoke memcg reclaim of page cache here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			var events int
			for _, ev := range collected() {
				// Only its memcg reclaim: another test binary's node
				// reclaim window (zone_reclaim_mode is system-wide) or a
				// boosted watermark may add other kinds to the reader.
				if ev.Kind == event.KindReclaimStall && int(ev.Pid) == rep.Pid && ev.Reclaim.Kind == event.StallMemcgReclaim {
					events++
					if ev.Reclaim.DurationNs == 0 || ev.Reclaim.GFP == "" {
						t.Errorf("stall event %+v", ev.Reclaim)
					}
				}
			}
			aggs, err := s.ReclaimAggregates()
			if err != nil {
				t.Fatal(err)
			}
			var row event.ReclaimAggregate
			var hist uint64
			for _, a := range aggs {
				if int(a.Pid) != rep.Pid {
					continue
				}
				if a.Kind != event.StallMemcgReclaim {
					t.Logf("another kind of reclaim by the reader, left out: %+v", a)
					continue
				}
				if a.Order != 0 || a.Context != event.ContextProcess {
					t.Errorf("unexpected row for the reader: %+v", a)
					continue
				}
				row.Count += a.Count
				row.TotalNs += a.TotalNs
				row.MaxNs = max(row.MaxNs, a.MaxNs)
				row.Reclaimed += a.Reclaimed
				hist += a.Histogram.Count()
			}
			begins, ends := rep.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"], rep.Counts["vmscan:mm_vmscan_memcg_reclaim_end"]
			t.Logf("%s: memcg reclaim of pid %d: memtrace %d stalls (%d events), total %v, max %v, %d pages reclaimed; tracefs %d begin, %d end",
				c.name, rep.Pid, row.Count, events, time.Duration(row.TotalNs), time.Duration(row.MaxNs), row.Reclaimed, begins, ends)
			if row.Count != begins || row.Count != ends || row.Count == 0 {
				t.Errorf("memcg reclaim stalls: memtrace %d, tracefs begin %d end %d", row.Count, begins, ends)
			}
			if hist != row.Count {
				t.Errorf("histograms hold %d stalls, count is %d", hist, row.Count)
			}
			if row.Reclaimed == 0 || row.MaxNs == 0 || row.TotalNs < row.MaxNs {
				t.Errorf("totals: %+v", row)
			}
			if events == 0 {
				t.Error("no stall event sent (the first ones of a key are never sampled out)")
			}
			checkStats(t, s)
		})
	}
}

// TestMemcgReclaimOnChargeFailures: charges that fail at the memory
// cgroup's limit (provoke.AllocFailures) reclaim first, also where no
// page cache can be reclaimed (a VM without a disk); memtrace counts those
// stalls as a tracefs counter on the child's comm does.
func TestMemcgReclaimOnChargeFailures(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for i, c := range stallHookCases {
		t.Run(c.name, func(t *testing.T) {
			s := startStalls(t, c.disable, c.prefix, event.SignalReclaim)
			dir, unmount, err := tracefs.Mount()
			if err != nil {
				t.Fatal(err)
			}
			defer unmount()
			comm := "mt-mchg-" + strconv.Itoa(i)
			counter, err := tracefs.NewCounter(dir, "vmscan", "mm_vmscan_memcg_reclaim_begin", `comm == "`+comm+`"`)
			if err != nil {
				t.Fatal(err)
			}
			defer counter.Close()
			rep, err := provoke.AllocFailures(3, provoke.WithComm(comm))
			if err != nil {
				t.Fatal(err)
			}
			want, err := counter.Count()
			if err != nil {
				t.Fatal(err)
			}
			aggs, err := s.ReclaimAggregates()
			if err != nil {
				t.Fatal(err)
			}
			var got uint64
			for _, a := range aggs {
				if int(a.Pid) == rep.Pid && a.Kind == event.StallMemcgReclaim {
					got += a.Count
				}
			}
			t.Logf("%s: memcg reclaim before %d failed charges (%s) of pid %d: memtrace %d, tracefs %d", c.name, rep.Failed, rep.Syscall, rep.Pid, got, want)
			if got != want || got == 0 {
				t.Errorf("memcg reclaim stalls: memtrace %d, tracefs %d", got, want)
			}
			checkStats(t, s)
		})
	}
}

// TestCompactionCounts: a process growing the huge page pool while no
// free block of that order is left compacts in its own context; memtrace
// counts its direct compactions as tracefs counts try_to_compact_pages for
// its thread, with outcomes named from the running kernel, and its kswapd
// wakeups and direct reclaims as tracefs counts them; kswapd's own run is
// recorded when it went back to sleep.
func TestCompactionCounts(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for i, c := range stallHookCases {
		t.Run(c.name, func(t *testing.T) {
			s := startStalls(t, c.disable, c.prefix, event.SignalReclaim, event.SignalCompaction)
			collected := drain(s)
			dir, unmount, err := tracefs.Mount()
			if err != nil {
				t.Fatal(err)
			}
			defer unmount()
			kwake, err := tracefs.NewCounter(dir, "vmscan", "mm_vmscan_kswapd_wake", "")
			if err != nil {
				t.Fatal(err)
			}
			defer kwake.Close()
			rep, err := provoke.Compaction(3, provoke.WithComm("mt-compact-"+strconv.Itoa(i)))
			if errors.Is(err, errors.ErrUnsupported) {
				t.Skipf("cannot provoke direct compaction safely here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			wakes, err := kwake.Count()
			if err != nil {
				t.Fatal(err)
			}
			if wakes > 0 {
				waitKswapdRun(t, s)
			}
			last, found, err := s.LastCompaction(uint32(rep.Tids[0]))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			var events int
			for _, ev := range collected() {
				if ev.Kind == event.KindCompactionStall && int(ev.Pid) == rep.Pid {
					events++
					if ev.Compaction.Order <= 0 || isNumber(ev.Compaction.Outcome) || isNumber(ev.Compaction.Priority) {
						t.Errorf("compaction event %+v", ev.Compaction)
					}
				}
			}
			comp, err := s.CompactionAggregates()
			if err != nil {
				t.Fatal(err)
			}
			var calls, obtained, outcomes, hist uint64
			var total, maxNs uint64
			byOutcome := map[string]uint64{}
			for _, a := range comp {
				if int(a.Pid) != rep.Pid || a.Kind != event.StallCompaction {
					continue
				}
				calls += a.Count
				obtained += a.PageObtained
				total += a.TotalNs
				maxNs = max(maxNs, a.MaxNs)
				hist += a.Histogram.Count()
				for _, o := range a.Outcomes {
					outcomes += o.Count
					byOutcome[o.Name] += o.Count
					if isNumber(o.Name) {
						t.Errorf("outcome %d has no name from the kernel's BTF", o.Value)
					}
				}
			}
			try := rep.Counts["compaction:mm_compaction_try_to_compact_pages"]
			t.Logf("%s: pid %d grew the pool to %d (asked %d): memtrace %d compactions (%d events) %v, %d with the page, total %v, max %v; tracefs %d try_to_compact_pages",
				c.name, rep.Pid, rep.PoolGot, rep.PoolAsked, calls, events, byOutcome, obtained, time.Duration(total), time.Duration(maxNs), try)
			if calls != try || calls < 3 {
				t.Errorf("direct compactions: memtrace %d, tracefs %d", calls, try)
			}
			if outcomes != calls || hist != calls {
				t.Errorf("%d calls, %d by outcome, %d in histograms", calls, outcomes, hist)
			}
			if !found || int(last.Pid) != rep.Pid || last.Outcome == "" || isNumber(last.Outcome) || last.EndNs < last.StartNs {
				t.Errorf("last compaction of tid %d: found %v, %+v", rep.Tids[0], found, last)
			}

			rec, err := s.ReclaimAggregates()
			if err != nil {
				t.Fatal(err)
			}
			got := map[event.StallKind]uint64{}
			var runs, passes uint64
			for _, a := range rec {
				if int(a.Pid) == rep.Pid {
					got[a.Kind] += a.Count
				}
				if a.Kind == event.StallKswapdRun {
					runs += a.Count
					passes += a.Passes
				}
			}
			wk, dr := rep.Counts["vmscan:mm_vmscan_wakeup_kswapd"], rep.Counts["vmscan:mm_vmscan_direct_reclaim_begin"]
			t.Logf("%s: kswapd woken by pid %d: memtrace %d, tracefs %d; its direct reclaims: memtrace %d, tracefs %d; kswapd runs %d (%d passes), tracefs kswapd_wake %d",
				c.name, rep.Pid, got[event.StallKswapdWakeup], wk, got[event.StallDirectReclaim], dr, runs, passes, wakes)
			// tracefs counts the worker thread, memtrace the process:
			// its main thread writing a reply while the pool is full may
			// wake kswapd too (a boosted watermark wakes it on the next
			// allocation, whoever makes it). A few more, never fewer.
			if w, d := got[event.StallKswapdWakeup], got[event.StallDirectReclaim]; w < wk || w > wk+2 || d < dr || d > dr+2 {
				t.Errorf("kswapd wakeups memtrace %d tracefs %d; direct reclaims memtrace %d tracefs %d",
					got[event.StallKswapdWakeup], wk, got[event.StallDirectReclaim], dr)
			}
			if wakes > 0 && (runs == 0 || passes < runs) {
				t.Errorf("kswapd woke %d times, memtrace recorded %d runs with %d passes", wakes, runs, passes)
			}
			checkStats(t, s)
		})
	}
}

// waitKswapdRun waits (up to 30 s) for kswapd to finish a run that
// memtrace saw begin: a run is recorded when kswapd goes back to sleep.
func waitKswapdRun(t *testing.T, s *loader.Session) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rec, err := s.ReclaimAggregates()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range rec {
			if a.Kind == event.StallKswapdRun {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func checkStats(t *testing.T, s *loader.Session) {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for sig, v := range st {
		if v.Lost != 0 || v.MapFull != 0 {
			t.Errorf("%s: %+v", sig, v)
		}
	}
}
