package record

import (
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func failure(at time.Time, pid uint32, count uint64, thp bool) event.Event {
	return event.Event{Kind: event.KindAllocFailure, Time: at, Task: event.Task{Pid: pid, Comm: "app"},
		AllocFailure: &event.AllocFailure{Order: 2, GFP: "GFP_KERNEL", Count: count, THPFallback: thp, StackID: 7}}
}

func kinds(ts []Trigger) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Kind)
	}
	return out
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{"100/10s": {100, 10 * time.Second}, "6/1h": {6, time.Hour}, "0": {}, "off": {}} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "0/1s", "-1/1s", "1/0s", "1/x", "1/1ns", "1/48h", "a/1s"} {
		if r, err := ParseRate(in); err == nil {
			t.Errorf("%q: parsed as %v, want an error", in, r)
		}
	}
}

// TestQuietTrigger: the first failure fires, those within the quiet
// period do not, the first after it does; THP fallbacks never do.
func TestQuietTrigger(t *testing.T) {
	d := newDetector(Triggers{Quiet: time.Minute})
	if got := kinds(d.event(ptr(failure(t0, 1, 1, true)))); got != nil {
		t.Errorf("THP fallback fired %v", got)
	}
	if got := kinds(d.event(ptr(failure(t0, 1, 1, false)))); len(got) != 1 || got[0] != KindFirstFailure {
		t.Errorf("first failure fired %v", got)
	}
	if got := kinds(d.event(ptr(failure(t0.Add(59*time.Second), 1, 2, false)))); got != nil {
		t.Errorf("failure within the quiet period fired %v", got)
	}
	if got := kinds(d.event(ptr(failure(t0.Add(2*time.Minute), 1, 3, false)))); len(got) != 1 {
		t.Errorf("failure after a quiet minute fired %v", got)
	}
}

// TestBurstTrigger: failures counted from the exact counts of sampled
// events; the trigger fires on crossing the rate, once, and again only
// after the rate fell below it.
func TestBurstTrigger(t *testing.T) {
	d := newDetector(Triggers{Burst: Rate{N: 100, Per: time.Second}})
	// 64 events, then a sampled one whose count says 128.
	var fired []string
	for i := 1; i <= 64; i++ {
		fired = append(fired, kinds(d.event(ptr(failure(t0.Add(time.Duration(i)*time.Millisecond), 1, uint64(i), false))))...)
	}
	if fired != nil {
		t.Fatalf("64 failures fired %v", fired)
	}
	if got := kinds(d.event(ptr(failure(t0.Add(100*time.Millisecond), 1, 128, false)))); len(got) != 1 || got[0] != KindFailureBurst {
		t.Fatalf("128 failures within 1s fired %v", got)
	}
	if got := kinds(d.event(ptr(failure(t0.Add(200*time.Millisecond), 1, 256, false)))); got != nil {
		t.Errorf("still in the burst, fired again: %v", got)
	}
	// Three seconds later a single failure: the rate fell.
	if got := kinds(d.event(ptr(failure(t0.Add(3*time.Second), 1, 257, false)))); got != nil {
		t.Errorf("a lone failure fired %v", got)
	}
	var again []string
	for i := uint64(1); i <= 100; i++ {
		again = append(again, kinds(d.event(ptr(failure(t0.Add(4*time.Second), 2, i, false))))...)
	}
	if len(again) != 1 {
		t.Errorf("a second burst fired %v, want one trigger", again)
	}
}

func TestStallHugeAndPressureTriggers(t *testing.T) {
	d := newDetector(Triggers{Stall: 100 * time.Millisecond, Huge: true, PSI: 10})
	stall := func(kind event.StallKind, dur time.Duration) *event.Event {
		return &event.Event{Time: t0, Reclaim: &event.ReclaimStall{Kind: kind, DurationNs: uint64(dur)}}
	}
	if got := kinds(d.event(stall(event.StallDirectReclaim, 150*time.Millisecond))); len(got) != 1 || got[0] != KindReclaimStall {
		t.Errorf("long direct reclaim fired %v", got)
	}
	if got := kinds(d.event(stall(event.StallDirectReclaim, 50*time.Millisecond))); got != nil {
		t.Errorf("short direct reclaim fired %v", got)
	}
	if got := kinds(d.event(stall(event.StallKswapdRun, time.Second))); got != nil {
		t.Errorf("kswapd run fired %v", got)
	}
	comp := &event.Event{Time: t0, Compaction: &event.CompactionStall{DurationNs: uint64(200 * time.Millisecond)}}
	if got := kinds(d.event(comp)); len(got) != 1 || got[0] != KindCompactionStall {
		t.Errorf("long compaction fired %v", got)
	}
	huge := func(h event.Hugetlb) *event.Event { return &event.Event{Time: t0, Hugetlb: &h} }
	if got := kinds(d.event(huge(event.Hugetlb{Call: event.CallShmget, HugeRequest: true, OK: false, Errno: "ENOMEM"}))); len(got) != 1 || got[0] != KindHugeFailure {
		t.Errorf("failed huge request fired %v", got)
	}
	if got := kinds(d.event(huge(event.Hugetlb{Call: event.CallMmap, AfterHugeFailure: true, OK: true}))); len(got) != 1 || got[0] != KindHugeFallback {
		t.Errorf("fallback fired %v", got)
	}
	if got := kinds(d.event(huge(event.Hugetlb{Call: event.CallMmap, HugeRequest: true, OK: true}))); got != nil {
		t.Errorf("granted huge request fired %v", got)
	}
	for i, c := range []struct {
		avg10 float64
		fire  bool
	}{{5, false}, {12, true}, {30, false}, {9, false}, {11, true}} {
		got := d.pressure(sysstate.Pressure{SomeAvg10: c.avg10}, t0)
		if (got != nil) != c.fire {
			t.Errorf("reading %d (avg10 %g): fired %v, want %v", i, c.avg10, got != nil, c.fire)
		}
	}
}

func ptr[T any](v T) *T { return &v }
