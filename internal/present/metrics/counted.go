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

// countFamily is one view's counter, and its histogram for a timed family.
type countFamily struct {
	fam view.Family
	*family
	hist *family // nil: no histogram
	// counts turns the family's cumulative aggregates into growth; nil
	// when the family is counted from events.
	counts *tracker.Table[view.Key, view.Tally, uint32]
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
		var low []string
		for _, d := range f.Labelled() {
			low = append(low, d.Label)
		}
		c := &countFamily{fam: f, family: newFamily(f.Metric, namespace+"_"+f.Metric+"_total", f.Help, low, high, maxSeries)}
		if t := f.Timing; t != nil && t.Metric != "" {
			c.hist = newFamily(t.Metric, namespace+"_"+t.Metric+"_seconds", t.Help, low, high, maxSeries)
			c.hist.histogram = true
		}
		if f.Rows != nil {
			c.counts = tracker.NewTable[view.Tally](pids, view.Key.Owner)
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
		if len(n.Labels) != len(c.fam.Dimensions) {
			return fmt.Errorf("%s: a count with %d labels, want %d", c.fam.Signal, len(n.Labels), len(c.fam.Dimensions))
		}
	}
	defer c.counts.Sweep()
	for _, n := range counts {
		if g := c.counts.Add(now, n.KeyOf(), n.Tally()); g != (view.Tally{}) {
			c.count(n, g, high)
		}
	}
	return nil
}

// count adds one count's growth to the counter and the histogram.
func (c *countFamily) count(n view.Count, g view.Tally, high func(event.Task) []string) {
	values := append(c.fam.MetricLabels(n), high(n.Task)...)
	c.add(slices.Clone(values), float64(g.N))
	if c.hist != nil {
		c.hist.observe(values, g)
	}
}
