package watch

// What tells an operator why the allocator failed, beside who failed:
// the zone state read at each failure burst, the stalls over the
// --stall-threshold, the THP fallbacks kept apart from the failures that
// matter, and the atomic demand that vm.min_free_kbytes must cover.

import (
	"strconv"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/burst"
	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
)

// StallRow is one stall over the threshold.
type StallRow struct {
	Time     time.Time
	Pid      uint32
	Comm     string
	Cgroup   string
	Kind     event.StallKind
	Order    int32
	GFP      string
	Duration time.Duration
	// Detail is what the stall achieved: pages reclaimed, or the
	// compaction's outcome.
	Detail string
	// Stack is the kernel stack where the stall began, symbolized.
	Stack []string
}

// THPProc is one process's THP fallbacks: transparent-huge-page faults
// whose huge page could not be had (expected; the fault falls back to
// small pages), kept out of the failure table.
type THPProc struct {
	Pid      uint32
	Comm     string
	Recent   uint64
	Total    uint64
	LastSeen time.Time
}

func (p *THPProc) rank() (uint64, uint64, uint32) { return p.Recent, p.Total, p.Pid }

// why is the model's part for these.
type why struct {
	bursts burst.Bursts
	// StallThreshold: stalls at least this long are listed (0: none).
	stallThreshold time.Duration
	stalls         []StallRow // newest last
	maxStalls      int
	longStalls     uint64
	thp            map[uint32]*THPProc
	totalTHP       uint64
	demand         *demand.Reading
}

func newWhy() why {
	return why{bursts: burst.Bursts{Max: 5}, maxStalls: 20, thp: map[uint32]*THPProc{}}
}

// kept says whether the run loop keeps ev for the next tick: a failure
// with its zone state, or a stall over the threshold.
func (m *Model) kept(ev *event.Event) bool {
	if a := ev.AllocFailure; a != nil && a.ZoneState != nil {
		return true
	}
	_, ok := m.stallRow(ev)
	return ok
}

// stallRow is ev as a row of the stall list, if it is a stall over the
// threshold.
func (m *Model) stallRow(ev *event.Event) (StallRow, bool) {
	th := m.why.stallThreshold
	if th <= 0 {
		return StallRow{}, false
	}
	row := StallRow{Time: ev.Time, Pid: ev.Pid, Comm: ev.Comm, Cgroup: where(ev.Task)}
	switch {
	case ev.Reclaim != nil:
		r := ev.Reclaim
		if r.Kind == event.StallKswapdWakeup {
			return StallRow{}, false
		}
		row.Kind, row.Order, row.GFP, row.Duration, row.Stack = r.Kind, r.Order, r.GFP, time.Duration(r.DurationNs), r.Stack
		switch {
		case r.Kind == event.StallThrottled:
			row.Detail = r.ThrottleReason
		default:
			row.Detail = plural(r.Reclaimed, "page") + " reclaimed"
		}
	case ev.Compaction != nil:
		c := ev.Compaction
		row.Kind, row.Order, row.GFP, row.Duration, row.Stack = event.StallCompaction, c.Order, c.GFP, time.Duration(c.DurationNs), c.Stack
		row.Detail = c.Outcome
		if c.PageObtained {
			row.Detail += ", page obtained"
		}
	default:
		return StallRow{}, false
	}
	return row, row.Duration >= th
}

// updateWhy folds the events of a tick and the demand read.
func (m *Model) updateWhy(t Tick) {
	for i := range t.Events {
		ev := &t.Events[i]
		m.why.bursts.Add(ev)
		if row, ok := m.stallRow(ev); ok {
			m.why.longStalls++
			m.why.stalls = append(m.why.stalls, row)
		}
	}
	if over := len(m.why.stalls) - m.why.maxStalls; over > 0 {
		m.why.stalls = append(m.why.stalls[:0], m.why.stalls[over:]...)
	}
	if t.Demand != nil {
		m.why.demand = t.Demand
	}
}

// addTHP counts THP fallbacks of a process.
func (m *Model) addTHP(now time.Time, a event.AllocAggregate, d uint64) {
	p := m.why.thp[a.Pid]
	if p == nil {
		p = &THPProc{Pid: a.Pid}
		m.why.thp[a.Pid] = p
	}
	p.Comm = a.Comm
	p.Recent += d
	p.Total += d
	p.LastSeen = now
	m.why.totalTHP += d
}

// Bursts returns the last failure bursts with their zone state, oldest
// first, and how many there were since start.
func (m *Model) Bursts() ([]burst.Burst, uint64) { return m.why.bursts.List(), m.why.bursts.Total }

// LongStalls returns the stalls over the threshold, newest first, and how
// many there were since start.
func (m *Model) LongStalls() ([]StallRow, uint64) {
	out := make([]StallRow, len(m.why.stalls))
	for i, r := range m.why.stalls {
		out[len(out)-1-i] = r
	}
	return out, m.why.longStalls
}

// THPRows returns the processes' THP fallbacks, most recent first, and
// their total since start.
func (m *Model) THPRows() ([]*THPProc, uint64) { return ranked(m.why.thp), m.why.totalTHP }

// Demand returns the atomic demand measured, nil when it is not counted.
func (m *Model) Demand() *demand.Reading { return m.why.demand }

func plural(n uint64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatUint(n, 10) + " " + what + "s"
}
