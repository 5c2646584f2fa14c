package view

import (
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// A compaction call still running moves from slot to slot between reads;
// its process's spread must end where the kernel's histogram is, not
// count the call twice, and percentiles come from the merged slots.
func TestSpreadFollowsStallsThatMoveSlot(t *testing.T) {
	read := func(n, total uint64, hist event.StallHistogram) Tally {
		return Count{N: n, Time: &Durations{TotalNs: total, MaxNs: total, Hist: hist}}.Tally()
	}
	var s Spread
	prev := Tally{}
	for _, now := range []Tally{
		read(1, 1e3, event.StallHistogram{1}),                                     // open: under 2 µs so far
		read(1, 5e6, event.StallHistogram{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), // 5 ms: slot 12
		read(2, 6e6, event.StallHistogram{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), // a second call opens
	} {
		g, ok := now.Since(prev)
		if !ok {
			t.Fatalf("growth from %v to %v read as a reset", prev, now)
		}
		s.Add(g)
		prev = now
	}
	h := s.Histogram()
	if h.Count() != 2 || h[0] != 1 || h[12] != 1 || s.N != 2 || s.TotalNs != 6e6 || s.MaxNs != 6e6 {
		t.Errorf("spread %+v, histogram %v", s, h)
	}
	if q := s.Quantile(0.5); q != 2*time.Microsecond {
		t.Errorf("p50 %v, want 2µs", q)
	}
	if q := s.Quantile(0.99); q != 8192*time.Microsecond {
		t.Errorf("p99 %v, want 8.192ms", q)
	}
}

func TestTallySinceResetAndMax(t *testing.T) {
	a := Tally{N: 5, TotalNs: 100, MaxNs: 40}
	if g, ok := (Tally{N: 2, TotalNs: 30, MaxNs: 20}).Since(a); ok || g.N != 2 || g.MaxNs != 20 {
		t.Errorf("a count going back: %+v, %v; want the whole value, not ok", g, ok)
	}
	if g, ok := (Tally{N: 6, TotalNs: 110, MaxNs: 40}).Since(a); !ok || g.N != 1 || g.TotalNs != 10 || g.MaxNs != 0 {
		t.Errorf("growth without a new maximum: %+v, %v", g, ok)
	}
	if g, _ := (Tally{N: 6, TotalNs: 170, MaxNs: 70}).Since(a); g.MaxNs != 70 {
		t.Errorf("a new maximum: %+v", g)
	}
	// An untimed count: its tally is its N alone.
	if tl := (Count{N: 3}).Tally(); tl != (Tally{N: 3}) {
		t.Errorf("untimed tally %+v", tl)
	}
}

func TestRegisterRefusesTwoAsReadDimensions(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registered")
		}
	}()
	Register(Family{Signal: "two-asread", Rows: RowsOf(countRow), Table: "x",
		Dimensions: []Dimension{{Label: "a", AsRead: true}, {Label: "b", AsRead: true}}})
}
