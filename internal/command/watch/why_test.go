package watch

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// THP fallbacks are counted apart from the failures that matter, a burst
// of failures shows the zones read at its first one, stalls over the
// threshold are listed, and the atomic demand is set against the reserve.
func TestWhyFailed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewModel(t0)
	m.why.stallThreshold = 10 * time.Millisecond
	thp := agg(30, "java", event.ContextProcess, 9, 40)
	thp.THPFallback, thp.GFP, thp.Atomic = true, "GFP_TRANSHUGE_LIGHT", false
	zs := &event.ZoneState{ReadAt: t0.Add(time.Millisecond), ReadAfterNs: 85000, Verdict: event.VerdictBelowMin,
		Summary: "Normal: free 31 MiB, min 32 MiB (GFP_ATOMIC may go to 12 MiB)"}
	fail := func(pid uint32, after int64) event.Event {
		z := *zs
		z.ReadAfterNs = after
		return event.Event{Kind: event.KindAllocFailure, Time: t0, Context: event.ContextSoftirq, Task: event.Task{Pid: pid, Comm: "swapper/0"},
			AllocFailure: &event.AllocFailure{Order: 1, GFP: "GFP_ATOMIC", ZoneState: &z}}
	}
	evs := []event.Event{
		fail(0, 85000), fail(0, -3000),
		{Kind: event.KindReclaimStall, Time: t0, Task: event.Task{Pid: 40, Comm: "postgres"},
			Reclaim: &event.ReclaimStall{Kind: event.StallDirectReclaim, GFP: "GFP_KERNEL", DurationNs: 25e6, Reclaimed: 32,
				StallStack: event.StallStack{Stack: []string{"try_to_free_pages+0x1", "__alloc_pages_slowpath+0x2"}}}},
		{Kind: event.KindReclaimStall, Time: t0, Task: event.Task{Pid: 41, Comm: "short"},
			Reclaim: &event.ReclaimStall{Kind: event.StallDirectReclaim, DurationNs: 9e6}},
		{Kind: event.KindCompactionStall, Time: t0, Task: event.Task{Pid: 42, Comm: "sysctl"},
			Compaction: &event.CompactionStall{Order: 9, Outcome: "deferred", DurationNs: 11e6}},
	}
	for i := range evs {
		if !m.kept(&evs[i]) && evs[i].Pid != 41 {
			t.Errorf("event %d not kept for the tick", i)
		}
	}
	d := demand.NewMeter(100 * time.Millisecond)
	d.Add(t0, event.AtomicDemand{})
	d.Add(t0.Add(100*time.Millisecond), event.AtomicDemand{HighPages: 12800}) // 50 MiB in 100 ms
	m.Update(Tick{Now: t0.Add(time.Second), Alloc: []event.AllocAggregate{agg(10, "postgres", event.ContextProcess, 0, 5), thp},
		Events: evs, Demand: &demand.Reading{Summary: d.Summary(), Latest: d.Latest()},
		System: sysstate.Snapshot{Sysctl: sysstate.Sysctl{MinFreeKbytes: 67584}}})

	if m.TotalFailures != 5 || len(m.AllocRows()) != 1 {
		t.Errorf("THP fallbacks in the failure table: total %d, rows %d", m.TotalFailures, len(m.AllocRows()))
	}
	if rows, total := m.THPRows(); total != 40 || len(rows) != 1 || rows[0].Recent != 40 {
		t.Errorf("THP fallbacks %+v, total %d", rows, total)
	}
	if b, total := m.Bursts(); total != 1 || b[0].Failures != 2 || b[0].ReadAfterNs != 85000 {
		t.Errorf("bursts %+v, total %d", b, total)
	}
	stalls, n := m.LongStalls()
	if n != 2 || stalls[0].Kind != event.StallCompaction || stalls[1].Detail != "32 pages reclaimed" {
		t.Errorf("long stalls %+v (%d)", stalls, n)
	}

	var buf bytes.Buffer
	Render(&buf, m, View{})
	out := buf.String()
	for _, want := range []string{
		"Allocation failures by process  (total 5)",
		"THP fallbacks 40  (expected",
		"java[30] 40",
		"Zones at failure bursts  (1 since start)",
		"swapper/0[0] softirq order 1 (2 failures, read 85.0µs after)  GFP_ATOMIC\n      Normal: free 31 MiB, min 32 MiB (GFP_ATOMIC may go to 12 MiB)\n",
		"Stalls of 10.0ms or more  (2 since start, newest first)",
		"compaction      9      11.0ms",
		"25.0ms",
		"32 pages reclaimed",
		"atomic   now 50.0 MiB/100ms",
		"A BURST EXCEEDS IT",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("frame lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Kernel stacks of the newest long stalls") {
		t.Errorf("stall stacks without --stacks:\n%s", out)
	}
	buf.Reset()
	Render(&buf, m, View{Stacks: 3})
	out = buf.String()
	for _, want := range []string{
		"Kernel stacks of the newest long stalls",
		"#1  " + t0.Local().Format("15:04:05.000") + "  sysctl[42] compaction 11.0ms\n      (stack not available)",
		"#2  " + t0.Local().Format("15:04:05.000") + "  postgres[40] direct_reclaim 25.0ms\n      try_to_free_pages+0x1\n      __alloc_pages_slowpath+0x2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--stacks frame lacks %q:\n%s", want, out)
		}
	}
	s := Summarize(m, nil, false)
	if len(s.THPFallbacks) != 1 || len(s.Bursts) != 1 || s.AtomicDemand == nil || s.AtomicDemand.PerInterval.High.Pages != 12800 ||
		s.LongStalls == nil || *s.LongStalls != 2 || len(s.AllocFailures) != 1 {
		t.Errorf("summary %+v", s)
	}
}

// On an 80-column terminal, whose lines watch cuts to its width, a
// burst's verdict and zone figures and a long stall's time and result
// stay on screen: they used to follow the request's GFP names, past
// column 100, and were cut away.
func TestWhyFailedNarrowTerminal(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewModel(t0)
	m.why.stallThreshold = 10 * time.Millisecond
	gfp := "GFP_USER|__GFP_ZERO|__GFP_NOWARN|__GFP_COMP|__GFP_ACCOUNT"
	summary := "neither below the watermark nor fragmented (a cgroup limit, a __GFP_NORETRY/__GFP_NOWARN try, or memory freed since): Normal free 16 GiB, min 57 MiB, 22697 free blocks of order ≥ 2"
	evs := []event.Event{
		{Kind: event.KindAllocFailure, Time: t0, Context: event.ContextProcess, Task: event.Task{Pid: 27150, Comm: "mt-longprocs"},
			AllocFailure: &event.AllocFailure{Order: 2, GFP: gfp, ZoneState: &event.ZoneState{ReadAt: t0, ReadAfterNs: 1040000,
				Verdict: event.VerdictNeither, Summary: summary}}},
		{Kind: event.KindReclaimStall, Time: t0, Task: event.Task{Pid: 4815, Comm: "mt-memcgrecl"},
			Reclaim: &event.ReclaimStall{Kind: event.StallMemcgReclaim, GFP: "GFP_NOFS|__GFP_HIGHMEM|__GFP_MOVABLE|__GFP_NOWARN|__GFP_NORETRY|__GFP_HARDWALL",
				DurationNs: 14.2e6, Reclaimed: 119}},
	}
	// Four bursts before: a terminal shows as many as a table's rows
	// (MaxRows), the newest first.
	for i := 1; i <= 4; i++ {
		old := *evs[0].AllocFailure
		zs := *old.ZoneState
		zs.ReadAt = t0.Add(-time.Duration(i) * time.Second)
		old.ZoneState = &zs
		evs = append([]event.Event{{Kind: event.KindAllocFailure, Time: zs.ReadAt, Context: event.ContextProcess,
			Task: event.Task{Pid: uint32(27100 + i), Comm: "mt-longprocs"}, AllocFailure: &old}}, evs...)
	}
	m.Update(Tick{Now: t0.Add(time.Second), Events: evs})
	var buf bytes.Buffer
	Render(&buf, m, View{Width: 80, MaxRows: 3})
	screen := fitScreen(buf.String(), 80, 1000)
	if n := strings.Count(screen, "process order 2 ("); n != 3 || !strings.Contains(screen, "(5 since start, last 3)") ||
		!strings.Contains(screen, "[27102]") || strings.Contains(screen, "[27103]") {
		t.Errorf("%d bursts shown, want the newest 3 of 5:\n%s", n, screen)
	}
	// The System section (the atomic demand) comes before the stacks.
	buf.Reset()
	Render(&buf, m, View{Width: 80, MaxRows: 3, Stacks: 3})
	if out := buf.String(); strings.Index(out, "Kernel stacks of the newest long stalls") < strings.Index(out, "\nSystem\n") {
		t.Errorf("the long stalls' stacks before the System section:\n%s", out)
	}
	// The GFP_ATOMIC peak and the reserve within 80 columns.
	m.why.demand = &demand.Reading{Summary: demand.Summary{Interval: 100 * time.Millisecond,
		PerInterval: demand.Peaks{High: demand.Peak{Pages: 282}, Total: demand.Peak{Pages: 79622}}}}
	m.System.Sysctl.MinFreeKbytes = 67584
	buf.Reset()
	Render(&buf, m, View{Width: 80, MaxRows: 3})
	screen = fitScreen(buf.String(), 80, 1000)
	if !strings.Contains(screen, "GFP_ATOMIC-class peak 1.1 MiB/100ms  reserve for them 41.2 MiB") {
		t.Errorf("the atomic demand against the reserve cut away:\n%s", screen)
	}
	// An empty section takes one line.
	if !strings.Contains(screen, "Fragmentation (extfrag) by process  (total 0)  none\n") {
		t.Errorf("an empty section on more than one line:\n%s", screen)
	}
	for _, want := range []string{
		"mt-longprocs[27150] process order 2 (1 failure, read 1.04ms",
		"      neither below the watermark nor fragmented (a cgroup limit, a",
		"\n      Normal free 16 GiB, min 57 MiB, 22697 free blocks of order ≥ 2\n",
		"14.2ms  119 pages",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("an 80-column screen lacks %q:\n%s", want, screen)
		}
	}
}

// The reclaim table says what the stalls came to, the pages they
// reclaimed (the compaction table has its OUTCOME): growth between reads,
// summed per process, in the text and in --json.
func TestReclaimTableReclaimed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewModel(t0)
	row := func(n, pages uint64) event.ReclaimAggregate {
		return event.ReclaimAggregate{Task: event.Task{Pid: 4815, Comm: "mt-memcgrecl"}, Context: event.ContextProcess,
			Kind: event.StallMemcgReclaim, StallTotals: event.StallTotals{Count: n, TotalNs: n * 1000, MaxNs: 2000,
				Histogram: event.StallHistogram{0, n}}, Reclaimed: pages}
	}
	hooks := []event.HookStatus{{Signal: event.SignalReclaim, Attached: true}}
	m.Update(Tick{Now: t0.Add(time.Second), Rows: map[event.Signal]any{event.SignalReclaim: []event.ReclaimAggregate{row(10, 256)}}})
	m.Update(Tick{Now: t0.Add(2 * time.Second), Rows: map[event.Signal]any{event.SignalReclaim: []event.ReclaimAggregate{row(30, 28587)}}})
	var buf bytes.Buffer
	Render(&buf, m, View{Hooks: hooks})
	out := buf.String()
	if !strings.Contains(out, "RECLAIMED") || !strings.Contains(out, "112 MiB") {
		t.Errorf("no pages reclaimed in the reclaim table:\n%s", out)
	}
	s := Summarize(m, hooks, false)
	if r := s.Families[event.SignalReclaim]; len(r) != 1 || r[0].Time == nil || r[0].Time.ReclaimedPages != 28587 {
		t.Errorf("--json reclaim rows %+v", r)
	}
}
