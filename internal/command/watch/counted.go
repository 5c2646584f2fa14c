package watch

// The tables of the families that have a view with a watch table
// (internal/present/view): one row per process, its counts broken down by
// the family's dimensions. A new family is drawn here by registering its
// view; the tables of alloc, extfrag and hugetlb are drawn by hand.

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/tracker"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
	"github.com/memtrace/memtrace/internal/present/view"
)

// CountProc is one process's row in a family's table.
type CountProc struct {
	Pid    uint32
	Comm   string
	Cgroup string
	Recent uint64 // in the last interval
	Total  uint64 // since watch started
	// Labels holds, per dimension of the family, the count of each value:
	// accumulated since watch started, or as last read for an AsRead
	// dimension.
	Labels []map[string]uint64
	// Time sums how long the counted things took, for a timed family.
	Time     view.Spread
	LastSeen time.Time
}

func (p *CountProc) rank() (uint64, uint64, uint32) { return p.Recent, p.Total, p.Pid }

// countTable is one family's table.
type countTable struct {
	fam    view.Family
	procs  map[uint32]*CountProc
	counts *tracker.Table[view.Key, view.Tally, uint32] // nil: counted from events
	Total  uint64
}

// newCounted returns the tables of the registered views that have one.
func newCounted(pids *tracker.Tracker[uint32]) []*countTable {
	var out []*countTable
	for _, f := range view.Families() {
		if f.Table == "" {
			continue
		}
		c := &countTable{fam: f, procs: map[uint32]*CountProc{}}
		if f.Rows != nil {
			c.counts = tracker.NewTable[view.Tally](pids, view.Key.Owner)
		}
		out = append(out, c)
	}
	return out
}

// update folds one tick: the growth of the family's aggregates, or the
// events it counts.
func (c *countTable) update(t Tick) {
	for _, p := range c.procs {
		p.Recent = 0
	}
	if c.counts == nil {
		for i := range t.Events {
			if n, ok := c.fam.Event(&t.Events[i]); ok {
				c.add(t.Now, n, n.Tally())
				c.setParts(map[uint32][]view.Count{n.Task.Pid: {n}})
			}
		}
		return
	}
	rows, ok := t.Rows[c.fam.Signal]
	if !ok {
		return // a failed read: no key is forgotten
	}
	counts, err := c.fam.Rows.Counts(rows)
	if err != nil {
		return
	}
	defer c.counts.Sweep()
	byPid := map[uint32][]view.Count{}
	for _, n := range counts {
		if d := c.counts.Add(t.Now, n.KeyOf(), n.Tally()); d != (view.Tally{}) {
			c.add(t.Now, n, d)
		}
		if n.Parts != nil {
			byPid[n.Task.Pid] = append(byPid[n.Task.Pid], n)
		}
	}
	c.setParts(byPid)
}

// setParts sets the AsRead breakdown of the processes read: what their
// rows hold now.
func (c *countTable) setParts(byPid map[uint32][]view.Count) {
	for i, dim := range c.fam.Dimensions {
		if !dim.AsRead {
			continue
		}
		for pid, counts := range byPid {
			p := c.procs[pid]
			if p == nil {
				continue
			}
			parts := map[string]uint64{}
			if c.counts == nil {
				parts = p.Labels[i] // events: each adds its own
			}
			for _, n := range counts {
				for v, k := range n.Parts {
					parts[v] += k
				}
			}
			p.Labels[i] = parts
		}
	}
}

func (c *countTable) add(now time.Time, n view.Count, g view.Tally) {
	d := g.N
	p := c.procs[n.Task.Pid]
	if p == nil {
		p = &CountProc{Pid: n.Task.Pid, Labels: make([]map[string]uint64, len(c.fam.Dimensions))}
		for i := range p.Labels {
			p.Labels[i] = map[string]uint64{}
		}
		c.procs[n.Task.Pid] = p
	}
	p.Comm, p.Cgroup = n.Task.Comm, where(n.Task)
	p.Recent += d
	p.Total += d
	c.Total += d
	p.Time.Add(g)
	for i, l := range n.Labels {
		if i < len(p.Labels) && !c.fam.Dimensions[i].AsRead && d > 0 {
			p.Labels[i][l] += d
		}
	}
	p.LastSeen = now
}

// age drops the rows of processes the tracker aged out, and of those
// counted from events that were idle longer than ageOut.
func (c *countTable) age(now time.Time, aged []uint32, ageOut time.Duration) {
	for _, pid := range aged {
		delete(c.procs, pid)
	}
	if c.counts != nil || ageOut <= 0 {
		return
	}
	for pid, p := range c.procs {
		if now.Sub(p.LastSeen) > ageOut {
			delete(c.procs, pid)
		}
	}
}

// Rows returns the family's rows, most recent activity first.
func (c *countTable) Rows() []*CountProc { return ranked(c.procs) }

// breakdown writes the counts of one dimension, largest first: "a 12,
// b 3", or "a" alone. Values "" (a row without one) are left out.
func breakdown(m map[string]uint64) string {
	keys := slices.DeleteFunc(rankKeys(m), func(k string) bool { return k == "" || m[k] == 0 })
	if len(keys) == 1 {
		return text.Escape(keys[0])
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", text.Escape(k), m[k])
	}
	return strings.Join(parts, ", ")
}

// timeColumns are a timed family's columns: the total and maximum time
// and the percentiles of the histogram, as upper bounds of its slots.
var timeColumns = []string{"TIME", "MAX", "P50", "P99"}

func timeCells(s view.Spread) []string {
	if !s.Timed() {
		return []string{"-", "-", "-", "-"}
	}
	return []string{duration(time.Duration(s.TotalNs)), duration(time.Duration(s.MaxNs)),
		below(s.Quantile(0.5)), below(s.Quantile(0.99))}
}

// pagesCell is what a process's stalls got, in bytes ("-": not timed).
func pagesCell(s view.Spread) string {
	if !s.Timed() {
		return "-"
	}
	return text.Bytes(s.Pages*pageSize, text.Fixed)
}

func (v View) countedTables(w io.Writer, m *Model) {
	for _, c := range m.counted {
		if len(c.procs) == 0 && !event.Attached(v.Hooks, c.fam.Signal) {
			continue // a family not traced (--signals): no empty table
		}
		header := []string{"PID", "COMM", "LAST", "TOTAL"}
		for _, d := range c.fam.Dimensions {
			header = append(header, d.Header)
		}
		if c.fam.Timing != nil {
			header = append(header, timeColumns...)
			if c.fam.Timing.Pages != "" {
				header = append(header, c.fam.Timing.Pages)
			}
		}
		header = append(header, "CONTAINER/CGROUP")
		section(v, w, fmt.Sprintf("%s  (total %d)", c.fam.Table, c.Total), header, c.Rows(), func(p *CountProc) []string {
			row := []string{strconv.FormatUint(uint64(p.Pid), 10), text.Escape(p.Comm),
				strconv.FormatUint(p.Recent, 10), strconv.FormatUint(p.Total, 10)}
			for _, l := range p.Labels {
				row = append(row, breakdown(l))
			}
			if c.fam.Timing != nil {
				row = append(row, timeCells(p.Time)...)
				if c.fam.Timing.Pages != "" {
					row = append(row, pagesCell(p.Time))
				}
			}
			return append(row, text.Escape(p.Cgroup))
		})
	}
}

// SummaryCount is one process's counts of a family in `watch --json`.
type SummaryCount struct {
	Pid    uint32 `json:"pid"`
	Comm   string `json:"comm"`
	Cgroup string `json:"cgroup,omitempty"`
	Recent uint64 `json:"recent"`
	Total  uint64 `json:"total"`
	// Labels: per dimension (its label name), the count of each value.
	Labels map[string]map[string]uint64 `json:"labels,omitempty"`
	// Time: for a timed family, how long the counted things took.
	Time *SummaryTime `json:"time,omitempty"`
}

// SummaryTime is the time of one process's stalls since watch started:
// the total, the longest, the in-kernel histogram (slot k counts those
// under 2^(k+1) µs) and its 50th and 99th percentiles as the upper bounds
// of their slots.
type SummaryTime struct {
	Timed     uint64               `json:"timed"`
	TotalNs   uint64               `json:"total_ns"`
	MaxNs     uint64               `json:"max_ns"`
	P50Ns     int64                `json:"p50_below_ns"`
	P99Ns     int64                `json:"p99_below_ns"`
	Histogram event.StallHistogram `json:"histogram"`
	// ReclaimedPages: what reclaim stalls reclaimed (families with
	// Timing.Pages).
	ReclaimedPages uint64 `json:"reclaimed_pages,omitempty"`
}

// summarizeCounted lists the families' rows by signal.
func summarizeCounted(m *Model) map[event.Signal][]SummaryCount {
	out := map[event.Signal][]SummaryCount{}
	for _, c := range m.counted {
		rows := []SummaryCount{}
		for _, p := range c.Rows() {
			s := SummaryCount{Pid: p.Pid, Comm: p.Comm, Cgroup: p.Cgroup, Recent: p.Recent, Total: p.Total}
			for i, d := range c.fam.Dimensions {
				if s.Labels == nil {
					s.Labels = map[string]map[string]uint64{}
				}
				s.Labels[d.Label] = p.Labels[i]
			}
			if c.fam.Timing != nil {
				h := p.Time.Histogram()
				s.Time = &SummaryTime{Timed: h.Count(), TotalNs: p.Time.TotalNs, MaxNs: p.Time.MaxNs,
					P50Ns: int64(h.Quantile(0.5)), P99Ns: int64(h.Quantile(0.99)), Histogram: h, ReclaimedPages: p.Time.Pages}
			}
			rows = append(rows, s)
		}
		out[c.fam.Signal] = rows
	}
	return out
}

// countedEvents says whether a view counts ev, so the run loop keeps it
// for the next tick.
func countedEvents(m *Model, ev *event.Event) bool {
	for _, c := range m.counted {
		if c.counts == nil {
			if _, ok := c.fam.Event(ev); ok {
				return true
			}
		}
	}
	return false
}
