// Package view says how memtrace's outputs show each signal family: its
// section of the capture document, its table in `memtrace watch` and its
// counter at serve's /metrics. Each family registers one Family, from an
// init in a file of this package named for it; capture, watch and the
// metrics exporter iterate the registry and read the family's data
// through event.Source (its aggregates) and its events, so a new family
// appears in all three outputs without editing any of them.
//
// The families that predate the views (alloc, extfrag, hugetlb) keep the
// tables and counters the outputs draw for them by hand, whose columns
// and labels are pinned by tests and dashboards; their views give the
// capture section and its order.
package view

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/memtrace/memtrace/internal/event"
)

// Family is how the outputs show one signal family.
type Family struct {
	Signal event.Signal
	// Rows reads what event.Source.Aggregates returns for Signal (see
	// RowsOf); nil when the family keeps no in-kernel aggregates.
	Rows *Rows
	// Section is the capture document's key for the aggregate rows, in
	// snake case ("alloc_failures"); "" puts none in the document.
	Section string
	// Event counts one event of a family that keeps no aggregates: ok is
	// false for an event it does not count. nil: its counts are its Rows.
	Event func(ev *event.Event) (c Count, ok bool)

	// Table is the title of the family's watch table, one row per
	// process ("Reclaim stalls by process"); "" draws none.
	Table string
	// Metric names the family's counter at /metrics,
	// memtrace_<Metric>_total; "" exports none. Help is its help text.
	Metric, Help string
	// Dimensions are what a count is broken down by: a column of the
	// watch table, a label of the counter.
	Dimensions []Dimension
	// Timing, when set, says the counts carry how long the counted things
	// took (Count.Time): see timing.go.
	Timing *Timing
}

// Dimension is one breakdown of a family's counts.
type Dimension struct {
	// Label is the Prometheus label name ("order"); Header the watch
	// column ("ORDERS").
	Label, Header string
	// AsRead: one count is spread over this dimension's values
	// (Count.Parts: a row's compaction calls by outcome), and those parts
	// may move from one value to another between reads (a call still
	// running changes outcome). They are shown as read, per process, in
	// watch, and are no label at /metrics, where a counter must not go
	// down. A family has at most one.
	AsRead bool
}

// Count is one cumulative in-kernel counter of a family (an aggregate
// row), or the increment one event brings.
type Count struct {
	Task event.Task
	// Key tells apart the counters of one process: the family's
	// aggregation key less the pid, in any stable form. Rows of one
	// read must not share a (pid, key).
	Key string
	// Labels holds one value per Dimension, in order ("" for an AsRead
	// one).
	Labels []string
	N      uint64
	// Parts is N by the values of the family's AsRead dimension, as the
	// kernel holds them now.
	Parts map[string]uint64
	// Time is how long the N things took, for a family with Timing.
	Time *Durations
}

// Labelled are the dimensions that label the family's metrics: all but
// an AsRead one.
func (f Family) Labelled() []Dimension {
	out := make([]Dimension, 0, len(f.Dimensions))
	for _, d := range f.Dimensions {
		if !d.AsRead {
			out = append(out, d)
		}
	}
	return out
}

// MetricLabels are c's values of f's Labelled dimensions.
func (f Family) MetricLabels(c Count) []string {
	out := make([]string, 0, len(f.Dimensions))
	for i, d := range f.Dimensions {
		if !d.AsRead && i < len(c.Labels) {
			out = append(out, c.Labels[i])
		}
	}
	return out
}

// Key is where a tracker keeps a count: its process and key.
type Key struct {
	Pid uint32
	Key string
}

// Owner is the process the count belongs to (tracker.NewTable).
func (k Key) Owner() uint32 { return k.Pid }

// KeyOf is c's tracker key.
func (c Count) KeyOf() Key { return Key{c.Task.Pid, c.Key} }

// Rows reads one family's aggregate rows, whatever their Go type.
type Rows struct {
	counts func(rows any) ([]Count, error)
	sorted func(rows any) (any, error)
}

// RowsOf describes aggregates of row type R (what event.Source.Aggregates
// returns for the family is a []R); count says what one row counts.
func RowsOf[R any](count func(R) Count) *Rows {
	cast := func(rows any) ([]R, error) {
		if rows == nil {
			return nil, nil
		}
		r, ok := rows.([]R)
		if !ok {
			var want []R
			return nil, fmt.Errorf("aggregates of type %T, want %T", rows, want)
		}
		return r, nil
	}
	return &Rows{
		counts: func(rows any) ([]Count, error) {
			r, err := cast(rows)
			if err != nil {
				return nil, err
			}
			out := make([]Count, len(r))
			for i, x := range r {
				out[i] = count(x)
			}
			return out, nil
		},
		sorted: func(rows any) (any, error) {
			r, err := cast(rows)
			if err != nil {
				return nil, err
			}
			r = append([]R{}, r...) // never null in the document
			sort.SliceStable(r, func(i, j int) bool {
				a, b := count(r[i]), count(r[j])
				if a.N != b.N {
					return a.N > b.N
				}
				return a.Task.Pid < b.Task.Pid
			})
			return r, nil
		},
	}
}

// Counts returns what each row counts.
func (r *Rows) Counts(rows any) ([]Count, error) { return r.counts(rows) }

// Sorted returns the rows as the capture document lists them, a []R
// (empty, not nil, when there are none): the largest counts first, so a
// reader sees the worst offenders at the top, then by pid.
func (r *Rows) Sorted(rows any) (any, error) { return r.sorted(rows) }

var (
	mu       sync.Mutex
	families []Family
)

// Register adds a family's view; it panics on a view the outputs could
// not use, like a second one for the same signal. The returned function
// removes it again (for tests).
func Register(f Family) (unregister func()) {
	if err := f.check(); err != nil {
		panic("view: " + err.Error())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, g := range families {
		if g.Signal == f.Signal {
			panic(fmt.Sprintf("view: signal %q registered twice", f.Signal))
		}
	}
	families = append(families, f)
	return func() {
		mu.Lock()
		defer mu.Unlock()
		families = slices.DeleteFunc(families, func(g Family) bool { return g.Signal == f.Signal })
	}
}

func (f Family) check() error {
	switch {
	case f.Signal == "":
		return fmt.Errorf("a family without a signal")
	case f.Section != "" && f.Rows == nil:
		return fmt.Errorf("%s: a capture section needs Rows", f.Signal)
	case f.Rows != nil && f.Event != nil:
		return fmt.Errorf("%s: counted twice, from Rows and from Event", f.Signal)
	case (f.Table != "" || f.Metric != "" || f.Timing != nil) && f.Rows == nil && f.Event == nil:
		return fmt.Errorf("%s: a table, a metric or timing needs Rows or Event", f.Signal)
	}
	asRead := 0
	for _, d := range f.Dimensions {
		if d.AsRead {
			asRead++
		}
	}
	if asRead > 1 {
		return fmt.Errorf("%s: %d AsRead dimensions, at most one", f.Signal, asRead)
	}
	return nil
}

// Families returns the registered views: the families of
// event.AllSignals in that order, then the others as registered.
func Families() []Family {
	mu.Lock()
	defer mu.Unlock()
	out := slices.Clone(families)
	rank := func(s event.Signal) int {
		if i := slices.Index(event.AllSignals, s); i >= 0 {
			return i
		}
		return len(event.AllSignals)
	}
	slices.SortStableFunc(out, func(a, b Family) int { return rank(a.Signal) - rank(b.Signal) })
	return out
}
