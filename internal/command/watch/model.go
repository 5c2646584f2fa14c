// Package watch is the view model and renderer of `memtrace watch`: the
// live tables an operator keeps open during a memory incident. It knows
// nothing of BPF; it is fed exact in-kernel aggregates, huge-page events,
// counters and system snapshots once per interval.
package watch

import (
	"cmp"
	"slices"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/aggregate/tracker"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Tick is what one interval brings.
type Tick struct {
	Now time.Time
	// Alloc and Extfrag are complete reads of the in-kernel aggregates,
	// names filled in; nil is a failed read (or an empty map): no key is
	// forgotten.
	Alloc   []event.AllocAggregate
	Extfrag []event.ExtfragAggregate
	Hugetlb []event.Event // new huge-page events, names filled in
	// Rows are complete reads of the aggregates of the other families
	// with a view, by signal (what event.Source.Aggregates returned); a
	// family missing is a failed read. Events are the new events the
	// views count.
	Rows   map[event.Signal]any
	Events []event.Event
	Stats  map[event.Signal]event.Stats
	System sysstate.Snapshot
	// Demand is the atomic demand measured so far; nil when not counted.
	Demand *demand.Reading
}

// AllocProc is one row of the allocation-failure table.
type AllocProc struct {
	Pid      uint32
	Comm     string
	Cgroup   string
	Recent   uint64 // in the last interval
	Total    uint64 // since watch started
	Orders   []uint32
	GFP      []string // distinct decoded masks, most frequent first
	Atomic   uint64   // failures of requests that could not sleep
	Contexts map[event.Context]uint64
	LastSeen time.Time

	gfpCount map[string]uint64
}

// FragProc is one row of the fragmentation table.
type FragProc struct {
	Pid         uint32
	Comm        string
	Cgroup      string
	Recent      uint64
	Total       uint64
	Fragmenting uint64
	Pairs       map[string]uint64 // "Unmovable→Movable"
	Orders      []int32           // fallback orders
	LastSeen    time.Time
}

// HugeRow is one huge-page request (or fallback mapping) in the table.
type HugeRow struct {
	Time   time.Time
	Pid    uint32
	Comm   string
	Call   event.Call
	Size   uint64
	Flags  string
	Result string
	// Mark is "FAILED" (a huge-page request that failed), "FALLBACK" (a
	// mapping without huge pages after such a failure) or "".
	Mark string
}

// Stack is a failing kernel stack with its exact count.
type Stack struct {
	ID     int32
	Count  uint64
	Frames []string
	Comms  map[string]uint64
}

type allocKey struct {
	pid   uint32
	order uint32
	gfp   event.Hex
	ctx   event.Context
	stack int32
}

type fragKey struct {
	pid                       uint32
	allocOrder, fallbackOrder int32
	allocMT, fallbackMT       int32
}

func (k allocKey) owner() uint32 { return k.pid }
func (k fragKey) owner() uint32  { return k.pid }

// Model accumulates ticks into the tables. Rows of processes that have
// been idle (in every in-kernel aggregate) for longer than AgeOut are
// dropped, so the tables stay bounded over hours.
type Model struct {
	AgeOut   time.Duration
	MaxHuge  int
	Start    time.Time
	Last     time.Time
	Interval time.Duration

	alloc  map[uint32]*AllocProc
	frag   map[uint32]*FragProc
	huge   []HugeRow
	stacks map[int32]*Stack
	// pids turns the cumulative aggregates into growth per tick and says
	// which processes went idle.
	pids        *tracker.Tracker[uint32]
	allocCounts *tracker.Table[allocKey, tracker.Count, uint32]
	fragCounts  *tracker.Table[fragKey, tracker.Pair, uint32]
	// counted are the tables of the families whose views have one.
	counted []*countTable
	// why: bursts, long stalls, THP fallbacks, atomic demand (why.go).
	why why

	// Totals since start, including aged-out processes; TotalFailures
	// leaves out THP fallbacks (THPRows).
	TotalFailures, TotalExtfrag, TotalHuge, TotalHugeFailed, TotalFallbacks uint64

	Stats     map[event.Signal]event.Stats
	prevStats map[event.Signal]event.Stats
	// EventsPerSec is the rate of events that passed the filters.
	EventsPerSec float64
	System       sysstate.Snapshot
	prevSystem   sysstate.Snapshot
	firstSystem  sysstate.Snapshot
	// Aged lists the pids dropped in the last Update, so the caller can
	// drop their in-kernel aggregates too.
	Aged []uint32
}

// NewModel returns an empty model.
func NewModel(start time.Time) *Model {
	m := &Model{
		AgeOut: 10 * time.Minute, MaxHuge: 50, Start: start, Last: start,
		alloc: map[uint32]*AllocProc{}, frag: map[uint32]*FragProc{}, stacks: map[int32]*Stack{},
		// No key bound: the tracker holds what the kernel maps hold,
		// which their max_entries bound.
		pids: tracker.New[uint32](0, 0),
		why:  newWhy(),
	}
	m.allocCounts = tracker.NewTable[tracker.Count](m.pids, allocKey.owner)
	m.fragCounts = tracker.NewTable[tracker.Pair](m.pids, fragKey.owner)
	m.counted = newCounted(m.pids)
	return m
}

// Update folds one interval into the model.
func (m *Model) Update(t Tick) {
	m.pids.Idle = m.AgeOut // before the reads: it decides whether a pid without keys is kept
	m.Interval = t.Now.Sub(m.Last)
	m.Last = t.Now
	for _, p := range m.alloc {
		p.Recent = 0
	}
	for _, p := range m.frag {
		p.Recent = 0
	}
	for _, p := range m.why.thp {
		p.Recent = 0
	}
	m.updateAlloc(t)
	m.updateFrag(t)
	m.updateHuge(t.Hugetlb)
	for _, c := range m.counted {
		c.update(t)
	}
	m.updateWhy(t)
	m.updateStats(t.Stats)
	m.prevSystem, m.System = m.System, t.System
	if m.firstSystem.Vmstat == nil {
		m.firstSystem = t.System
	}
	m.age(t.Now)
}

func (m *Model) updateAlloc(t Tick) {
	// A process can have thousands of keys (one per stack and flags):
	// its GFP names are ranked once per tick, not once per key.
	changed := map[*AllocProc]bool{}
	defer func() {
		for p := range changed {
			p.GFP = rankKeys(p.gfpCount)
		}
	}()
	if t.Alloc == nil {
		return
	}
	defer m.allocCounts.Sweep()
	for _, a := range t.Alloc {
		k := allocKey{a.Pid, a.Order, a.GFPFlags, a.Context, a.StackID}
		d := uint64(m.allocCounts.Add(t.Now, k, tracker.Count(a.Count)))
		if d == 0 {
			continue
		}
		if a.THPFallback {
			m.addTHP(t.Now, a, d)
			continue
		}
		p := m.alloc[a.Pid]
		if p == nil {
			p = &AllocProc{Pid: a.Pid, Contexts: map[event.Context]uint64{}, gfpCount: map[string]uint64{}}
			m.alloc[a.Pid] = p
		}
		p.Comm = a.Comm
		p.Cgroup = where(a.Task)
		p.Recent += d
		p.Total += d
		m.TotalFailures += d
		p.Contexts[a.Context] += d
		if a.Atomic {
			p.Atomic += d
		}
		name := a.GFP
		if name == "" {
			name = a.GFPFlags.String()
		}
		p.gfpCount[name] += d
		changed[p] = true
		p.Orders = addSorted(p.Orders, a.Order)
		p.LastSeen = t.Now
		if a.StackID >= 0 {
			s := m.stacks[a.StackID]
			if s == nil {
				s = &Stack{ID: a.StackID, Frames: a.Stack, Comms: map[string]uint64{}}
				m.stacks[a.StackID] = s
			}
			s.Count += d
			s.Comms[a.Comm] += d
		}
	}
}

func (m *Model) updateFrag(t Tick) {
	if t.Extfrag == nil {
		return
	}
	defer m.fragCounts.Sweep()
	for _, x := range t.Extfrag {
		k := fragKey{x.Pid, x.AllocOrder, x.FallbackOrder, x.AllocMigratetype, x.FallbackMigratetype}
		// Fragmenting is a second exact counter of the key. The kernel
		// adds to it after the count: a read in between sees its growth
		// a read late, so it is kept even when the count did not grow.
		g := m.fragCounts.Add(t.Now, k, tracker.Pair{A: x.Count, B: x.Fragmenting})
		d := g.A
		if g == (tracker.Pair{}) {
			continue
		}
		p := m.frag[x.Pid]
		if p == nil {
			p = &FragProc{Pid: x.Pid, Pairs: map[string]uint64{}}
			m.frag[x.Pid] = p
		}
		p.Comm = x.Comm
		p.Cgroup = where(x.Task)
		p.Recent += d
		p.Total += d
		m.TotalExtfrag += d
		p.Fragmenting += g.B
		p.Pairs[x.AllocMigratetypeName+"→"+x.FallbackMigratetypeName] += d
		p.Orders = addSorted(p.Orders, x.FallbackOrder)
		p.LastSeen = t.Now
	}
}

func (m *Model) updateHuge(evs []event.Event) {
	for _, ev := range evs {
		h := ev.Hugetlb
		if h == nil {
			continue
		}
		row := HugeRow{Time: ev.Time, Pid: ev.Pid, Comm: ev.Comm, Call: h.Call, Size: h.Size, Flags: h.FlagNames, Result: Result(h)}
		switch {
		case h.HugeRequest && !h.OK:
			row.Mark = "FAILED"
			m.TotalHugeFailed++
		case h.AfterHugeFailure && h.OK:
			row.Mark = "FALLBACK"
			m.TotalFallbacks++
		}
		if h.HugeRequest {
			m.TotalHuge++
		}
		m.huge = append(m.huge, row)
	}
	if over := len(m.huge) - m.MaxHuge; over > 0 {
		m.huge = append(m.huge[:0], m.huge[over:]...)
	}
}

func (m *Model) updateStats(st map[event.Signal]event.Stats) {
	if st == nil {
		return
	}
	m.prevStats, m.Stats = m.Stats, st
	if m.prevStats == nil || m.Interval <= 0 {
		return
	}
	var seen uint64
	for sig, s := range st {
		seen += delta(s.Seen, m.prevStats[sig].Seen)
	}
	m.EventsPerSec = float64(seen) / m.Interval.Seconds()
}

// delta is what a cumulative counter (events seen, vmstat) added since
// prev: one that went down was reset, and all of it is new.
func delta(now, prev uint64) uint64 {
	g, _ := tracker.Count(now).Since(tracker.Count(prev))
	return uint64(g)
}

// age drops the rows and counters of processes idle for longer than
// AgeOut; the caller deletes their in-kernel aggregates (Aged).
func (m *Model) age(now time.Time) {
	m.Aged = m.pids.Expired(now)
	m.pids.Forget(m.Aged)
	for _, pid := range m.Aged {
		delete(m.alloc, pid)
		delete(m.frag, pid)
		delete(m.why.thp, pid)
	}
	for _, c := range m.counted {
		c.age(now, m.Aged, m.AgeOut)
	}
	slices.Sort(m.Aged)
}

// addSorted inserts v into the sorted set s.
func addSorted[T cmp.Ordered](s []T, v T) []T {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
}

// firstVmstat is a vmstat sum at the first tick, for totals since start.
func (m *Model) firstVmstat(prefix string) uint64 {
	return sumPrefix(m.firstSystem.Vmstat, prefix)
}

// where says where a task runs, as an operator names it: the container
// (short id, or pod and QoS when the cgroup is a pod's), else the cgroup.
func where(t event.Task) string {
	if c := t.Container; c != nil {
		switch {
		case c.ID != "" && c.PodUID != "":
			return "ctr " + c.ShortID() + " pod " + shortUID(c.PodUID)
		case c.ID != "":
			return "ctr " + c.ShortID()
		default:
			return "pod " + shortUID(c.PodUID) + " " + c.QoS
		}
	}
	return t.Cgroup
}

func shortUID(uid string) string {
	if len(uid) > 8 {
		return uid[:8]
	}
	return uid
}
