package burst

import (
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

func failure(t0 time.Time, readAt time.Duration, after int64, pid uint32, thp bool) event.Event {
	return event.Event{Kind: event.KindAllocFailure, Time: t0, Task: event.Task{Pid: pid, Comm: "c"},
		AllocFailure: &event.AllocFailure{Order: 2, THPFallback: thp, ZoneState: &event.ZoneState{
			ReadAt: t0.Add(readAt), ReadAfterNs: after, Verdict: event.VerdictFragmented, Summary: "Normal: fragmented"}}}
}

func TestBurstsShareAReading(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := Bursts{Max: 2}
	evs := []event.Event{
		failure(t0, time.Millisecond, 85000, 1, false),
		failure(t0, time.Millisecond, -5000, 2, true), // same reading
		{Kind: event.KindExtfrag},
		failure(t0, time.Second, 12000, 3, false),
		failure(t0, 2*time.Second, 9000, 4, false),
	}
	var began int
	for i := range evs {
		if b.Add(&evs[i]) {
			began++
		}
	}
	if began != 3 || b.Total != 3 {
		t.Errorf("%d bursts began, total %d; want 3", began, b.Total)
	}
	got := b.List()
	if len(got) != 2 || got[0].Pid != 3 || got[1].Pid != 4 {
		t.Fatalf("kept %+v, want the last two", got)
	}
	b = Bursts{}
	for i := range evs[:2] {
		b.Add(&evs[i])
	}
	if x := b.List()[0]; x.Failures != 2 || x.THPFallbacks != 1 || x.ReadAfterNs != 85000 || x.Pid != 1 || x.Summary != "Normal: fragmented" {
		t.Errorf("burst %+v", x)
	}
	// The triggering failure arriving after one that reused its reading
	// still names the burst.
	b = Bursts{}
	b.Add(&evs[1])
	b.Add(&evs[0])
	if x := b.List()[0]; x.Pid != 1 || x.ReadAfterNs != 85000 || x.Failures != 2 {
		t.Errorf("late trigger: %+v", x)
	}
}
