package metrics

// The counters of the families that have a view with a metric
// (internal/present/view): memtrace_<metric>_total, labelled by the
// family's dimensions, then comm and the container labels when enabled.
// A new family is exported here by registering its view; alloc, extfrag
// and hugetlb have counters of their own.

import (
	"fmt"
	"slices"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/tracker"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/view"
)

// countFamily is one view's counter.
type countFamily struct {
	fam view.Family
	*family
	// counts turns the family's cumulative aggregates into growth; nil
	// when the family is counted from events.
	counts *tracker.Table[view.Key, tracker.Count, uint32]
}

// newCounted returns the counters of the registered views that have one;
// their aggregates share the exporter's process tracker, so idle
// processes age out of every family at once.
func newCounted(pids *tracker.Tracker[uint32], high []string, maxSeries int) []*countFamily {
	var out []*countFamily
	for _, f := range view.Families() {
		if f.Metric == "" {
			continue
		}
		low := make([]string, len(f.Dimensions))
		for i, d := range f.Dimensions {
			low[i] = d.Label
		}
		c := &countFamily{fam: f, family: newFamily(f.Metric, namespace+"_"+f.Metric+"_total", f.Help, low, high, maxSeries)}
		if f.Rows != nil {
			c.counts = tracker.NewTable[tracker.Count](pids, view.Key.Owner)
		}
		out = append(out, c)
	}
	return out
}

// sync adds the growth of the family's aggregates since the last sync.
func (c *countFamily) sync(now time.Time, rows any, high func(event.Task) []string) error {
	counts, err := c.fam.Rows.Counts(rows)
	if err != nil {
		return fmt.Errorf("%s: %w", c.fam.Signal, err)
	}
	for _, n := range counts {
		if len(n.Labels) != c.nLow {
			return fmt.Errorf("%s: a count with %d labels, want %d", c.fam.Signal, len(n.Labels), c.nLow)
		}
	}
	defer c.counts.Sweep()
	for _, n := range counts {
		if d := uint64(c.counts.Add(now, n.KeyOf(), tracker.Count(n.N))); d > 0 {
			c.add(append(slices.Clone(n.Labels), high(n.Task)...), float64(d))
		}
	}
	return nil
}
