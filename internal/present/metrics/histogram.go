package metrics

// Timed families (view.Timing) export their in-kernel log2 histograms as
// Prometheus histograms: slot k of the kernel's counts durations under
// 2^(k+1) µs (event.SlotBound), so it becomes the bucket le="2^(k+1)e-6"
// seconds, cumulative; the last slot is only in +Inf.

import (
	"time"

	"github.com/memtrace/memtrace/internal/present/promtext"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/view"
)

// bucketBounds are the upper bounds in seconds of the slots but the last.
var bucketBounds = func() []float64 {
	out := make([]float64, view.HistSlots-1)
	for k := range out {
		out[k] = event.SlotBound(k).Seconds()
	}
	return out
}()

// histSeries is one histogram series: the growth of its rows summed, and
// what the last scrape exported.
type histSeries struct {
	spread view.Spread
	// A slot goes down while a stall in it is still running and moves to
	// a longer one (compaction). Prometheus buckets must not go down, so
	// each cumulative bucket, and the count, is exported as the largest
	// value it has had: a bucket is then ahead of the kernel's by at most
	// the stalls running when it was read, and catches up as they end.
	exported      [view.HistSlots - 1]uint64
	exportedCount uint64
}

// observe adds the growth of one of the series' rows.
func (f *family) observe(values []string, g view.Tally) {
	if g.TotalNs == 0 && g.Hist == ([view.HistSlots]uint64{}) {
		return // nothing timed (a wakeup)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.seriesFor(values)
	if s.hist == nil {
		s.hist = &histSeries{}
	}
	s.hist.spread.Add(g)
}

// buckets returns the count and the cumulative buckets (upper bound in
// seconds to count) of a spread: the conversion alone, without the
// envelope.
func buckets(s view.Spread) (count uint64, cum []uint64) {
	cum = make([]uint64, view.HistSlots-1)
	var sum int64
	for k, n := range s.Hist {
		sum += max(n, 0)
		if k < len(cum) {
			cum[k] = uint64(sum)
		}
	}
	return uint64(sum), cum
}

// metric is the series as a constant histogram; f.mu is held.
func (h *histSeries) metric(desc *promtext.Desc, values []string) promtext.Metric {
	count, cum := buckets(h.spread)
	h.exportedCount = max(h.exportedCount, count)
	m := make(map[float64]uint64, len(cum))
	for k, n := range cum {
		h.exported[k] = max(h.exported[k], n)
		m[bucketBounds[k]] = h.exported[k]
	}
	sum := time.Duration(h.spread.TotalNs).Seconds()
	return promtext.MustNewConstHistogram(desc, h.exportedCount, sum, m, values...)
}
