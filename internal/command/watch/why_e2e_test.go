package watch

import (
	"bufio"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// stallThreshold is a histogram slot bound (2^10 µs): the stalls streamed
// over it are exactly those of the slots from 10 up.
const stallThreshold = 1024 * time.Microsecond

// TestWatchJSONStallsAndWhy runs watch --json with every signal and
// --stall-threshold, provokes memcg reclaim, direct compaction and
// allocation failures, and finds in the final summary each process's
// stalls counted exactly as tracefs counted them, with their time and
// outcomes; the streamed stall events are the ones over the threshold
// (as many as the histograms hold there), the failures' burst has its
// zone state, and the atomic demand was measured.
func TestWatchJSONStallsAndWhy(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = event.AllSignals
	cfg.StallThreshold = stallThreshold
	stop := runWatchWith(t, true, cfg)
	rec, errR := provoke.MemcgReclaim(provoke.WithComm("mt-why-recl"))
	comp, errC := provoke.Compaction(3, provoke.WithComm("mt-why-comp"))
	alloc, errA := provoke.AllocFailures(5, provoke.WithComm("mt-why-alloc"))
	out := stop()
	for _, err := range []error{errR, errC, errA} {
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatal(err)
		}
	}
	var final *Summary
	// Stall events over the threshold, by family and pid: the compaction
	// child also reclaims directly, and its reclaim stalls are not in its
	// compaction row's histogram.
	type famPid struct {
		sig event.Signal
		pid int
	}
	streamed := map[famPid]int{}
	zoneState := map[int]int{} // failure events with a zone state, by pid
	var short []string         // stall events under the threshold
	var stacked int            // stall events with a stack: none without StallStacks
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var kind struct{ Kind string }
		if err := json.Unmarshal(sc.Bytes(), &kind); err != nil {
			t.Fatal(err)
		}
		if kind.Kind == "summary" {
			var s Summary
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			if s.Final {
				final = &s
			}
			continue
		}
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Reclaim != nil || ev.Compaction != nil:
			var d uint64
			k := famPid{event.SignalCompaction, int(ev.Pid)}
			if ev.Reclaim != nil {
				d, k.sig = ev.Reclaim.DurationNs, event.SignalReclaim
			} else {
				d = ev.Compaction.DurationNs
			}
			if time.Duration(d) < stallThreshold {
				short = append(short, sc.Text())
			}
			if strings.Contains(sc.Text(), `"stack":`) {
				stacked++
			}
			streamed[k]++
		case ev.AllocFailure != nil && ev.AllocFailure.ZoneState != nil:
			zoneState[int(ev.Pid)]++
		}
	}
	if final == nil {
		t.Fatal("no final summary")
	}
	if len(short) > 0 {
		t.Errorf("%d stall events under --stall-threshold %v, e.g. %s", len(short), stallThreshold, short[0])
	}
	if stacked > 0 {
		t.Errorf("%d stall events carry a stack without StallStacks (--stacks)", stacked)
	}
	row := func(sig event.Signal, pid int) *SummaryCount {
		for i, r := range final.Families[sig] {
			if int(r.Pid) == pid {
				return &final.Families[sig][i]
			}
		}
		return nil
	}
	// over sums the histogram's slots at and above the threshold's.
	over := func(r *SummaryCount) (n uint64) {
		for k, c := range r.Time.Histogram {
			if k >= 10 {
				n += c
			}
		}
		return n
	}
	lost := final.Stats[event.SignalReclaim].Lost + final.Stats[event.SignalCompaction].Lost

	if errR != nil {
		t.Logf("memcg reclaim not provoked: %v", errR)
	} else {
		r := row(event.SignalReclaim, rec.Pid)
		begins := rec.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"]
		if r == nil || r.Time == nil {
			t.Fatalf("no reclaim row of pid %d in %+v", rec.Pid, final.Families[event.SignalReclaim])
		}
		sent := streamed[famPid{event.SignalReclaim, rec.Pid}]
		t.Logf("memcg reclaim of pid %d: watch %d (%v), time %+v; %d streamed over %v; tracefs %d", rec.Pid, r.Total, r.Labels["kind"], *r.Time, sent, stallThreshold, begins)
		// Other kinds by the reader (another test binary's node reclaim
		// window, a boosted watermark's kswapd wakeup) are not its memcg
		// reclaim: the row's total and timed stalls may hold them too.
		if r.Labels["kind"]["memcg_reclaim"] != begins || r.Total < begins || r.Time.Timed < begins {
			t.Errorf("memcg reclaim of pid %d: watch %v (%d timed), tracefs %d", rec.Pid, r.Labels["kind"], r.Time.Timed, begins)
		}
		if r.Time.TotalNs == 0 || r.Time.MaxNs == 0 || r.Time.P99Ns < r.Time.P50Ns {
			t.Errorf("time %+v", *r.Time)
		}
		if n := over(r); lost == 0 && uint64(sent) != n {
			t.Errorf("%d stall events streamed over %v, the histograms hold %d there", sent, stallThreshold, n)
		}
	}

	if errC != nil {
		t.Logf("compaction not provoked: %v", errC)
	} else {
		r := row(event.SignalCompaction, comp.Pid)
		try := comp.Counts["compaction:mm_compaction_try_to_compact_pages"]
		if r == nil || r.Time == nil {
			t.Fatalf("no compaction row of pid %d in %+v", comp.Pid, final.Families[event.SignalCompaction])
		}
		var outcomes uint64
		for _, n := range r.Labels["outcome"] {
			outcomes += n
		}
		sent := streamed[famPid{event.SignalCompaction, comp.Pid}]
		t.Logf("compaction by pid %d: watch %v, outcomes %v, time %+v; %d streamed; tracefs %d", comp.Pid, r.Labels["kind"], r.Labels["outcome"], *r.Time, sent, try)
		if r.Labels["kind"]["compaction"] != try || outcomes != try || r.Time.Timed != try {
			t.Errorf("compaction of pid %d: watch %v (%d by outcome, %d timed), tracefs %d", comp.Pid, r.Labels["kind"], outcomes, r.Time.Timed, try)
		}
		// A call's event is sent when it ends: the last one may still be
		// open when the child exits.
		if n := over(r); uint64(sent) > n {
			t.Errorf("%d compaction events over %v, the histograms hold %d there", sent, stallThreshold, n)
		}
	}

	if errA != nil {
		t.Fatalf("allocation failures not provoked: %v", errA)
	}
	if zoneState[alloc.Pid] == 0 {
		t.Errorf("no failure event of pid %d with its zone state", alloc.Pid)
	}
	// A burst is host-wide: on a busy host (another suite's failures) the
	// child's failures may fall within another process's burst and be
	// judged against its reading, or later bursts may push its own out
	// of the last few watch keeps. Its events' zone states (above) show
	// it was judged; its own burst is required only when no other
	// process's failure made one.
	var burst, others bool
	for _, b := range final.Bursts {
		burst = burst || int(b.Pid) == alloc.Pid && b.Summary != "" && b.ReadAfterNs >= 0
		others = others || int(b.Pid) != alloc.Pid
	}
	switch {
	case !burst && others:
		t.Logf("no failure burst of pid %d: other processes' failures made the bursts %+v", alloc.Pid, final.Bursts)
	case !burst:
		t.Errorf("no failure burst of pid %d: %+v", alloc.Pid, final.Bursts)
	}
	if d := final.AtomicDemand; d == nil || d.Readings == 0 || d.Error != "" {
		t.Errorf("atomic demand %+v", d)
	}
	if final.LongStalls == nil {
		t.Error("no count of long stalls with --stall-threshold")
	}
}
