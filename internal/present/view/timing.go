package view

import (
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// Timed families: what each count counted also took time (a reclaim
// stall, a compaction call), which the kernel sums, maximises and
// histograms per row (event.StallTotals). A family says so with Timing;
// its counts carry Time, and the outputs add to its table the total and
// maximum time and the percentiles of the histogram, and to /metrics a
// Prometheus histogram beside its counter.

// Timing describes a timed family's histogram at /metrics.
type Timing struct {
	// Metric names it, memtrace_<Metric>_seconds (its buckets, _sum and
	// _count); "" exports none. Help is its help text.
	Metric, Help string
	// Pages, when set, heads a watch column of the pages the counted
	// stalls got (Durations.Pages): what a reclaim stall came to, as a
	// compaction call's outcome is.
	Pages string
}

// HistSlots is the number of slots of an in-kernel log2 histogram
// (event.StallHistogram): slot k counts durations under event.SlotBound(k),
// the last one everything longer.
const HistSlots = 32

// Durations is how long the things of one count took, cumulative like
// its N: the in-kernel total, maximum and log2 histogram.
type Durations struct {
	TotalNs, MaxNs uint64
	Hist           event.StallHistogram
	// Pages the stalls got (reclaimed), for a Timing with Pages.
	Pages uint64
}

// DurationsOf is the Durations of an in-kernel stall aggregate.
func DurationsOf(t event.StallTotals) *Durations {
	return &Durations{TotalNs: t.TotalNs, MaxNs: t.MaxNs, Hist: t.Histogram}
}

// Tally is what an output keeps of one count between two reads, a
// tracker.Value: N and, for a timed family, its durations.
type Tally struct {
	N, TotalNs, MaxNs, Pages uint64
	Hist                     [HistSlots]uint64
}

// Tally is what c holds.
func (c Count) Tally() Tally {
	t := Tally{N: c.N}
	if d := c.Time; d != nil {
		t.TotalNs, t.MaxNs, t.Pages = d.TotalNs, d.MaxNs, d.Pages
		for k, n := range d.Hist {
			t.Hist[min(k, HistSlots-1)] += n
		}
	}
	return t
}

// Since returns what t added to prev (tracker.Value). N and the total
// time only grow, so either going back means the kernel deleted the row
// and counted it again from zero. A histogram slot may go down: a stall
// still running (a compaction call) moves from slot to slot as it lasts;
// its growth wraps, and Spread.Add reads it as negative. MaxNs is the
// new maximum, or 0 when it did not grow.
func (t Tally) Since(prev Tally) (Tally, bool) {
	if t.N < prev.N || t.TotalNs < prev.TotalNs || t.Pages < prev.Pages {
		return t, false
	}
	g := Tally{N: t.N - prev.N, TotalNs: t.TotalNs - prev.TotalNs, Pages: t.Pages - prev.Pages}
	if t.MaxNs > prev.MaxNs {
		g.MaxNs = t.MaxNs
	}
	for k := range t.Hist {
		g.Hist[k] = t.Hist[k] - prev.Hist[k]
	}
	return g, true
}

// Spread sums the growth of tallies: the time of a process's stalls, or
// of one series of a histogram.
type Spread struct {
	N, TotalNs, MaxNs, Pages uint64
	// Hist is signed: a slot's growth is negative when a running stall
	// left it. Summed over reads it is what the kernel holds, never
	// below zero but for a row the kernel deleted mid-stall.
	Hist [HistSlots]int64
}

// Add adds one growth.
func (s *Spread) Add(g Tally) {
	s.N += g.N
	s.TotalNs += g.TotalNs
	s.Pages += g.Pages
	s.MaxNs = max(s.MaxNs, g.MaxNs)
	for k, n := range g.Hist {
		s.Hist[k] += int64(n)
	}
}

// Histogram is the spread's histogram, slots below zero read as empty,
// trailing empty slots left out.
func (s Spread) Histogram() event.StallHistogram {
	var h event.StallHistogram
	for k, n := range s.Hist {
		if n > 0 {
			for len(h) < k {
				h = append(h, 0)
			}
			h = append(h, uint64(n))
		}
	}
	return h
}

// Timed reports whether any time was counted.
func (s Spread) Timed() bool { return s.TotalNs > 0 || s.Histogram().Count() > 0 }

// Quantile is the upper bound of the histogram slot that holds the
// q-quantile (event.StallHistogram.Quantile): the true value is below it,
// and at least half of it.
func (s Spread) Quantile(q float64) time.Duration { return s.Histogram().Quantile(q) }
