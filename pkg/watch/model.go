// Package watch is the view model and renderer of `memtrace watch`: the
// live tables an operator keeps open during a memory incident. It knows
// nothing of BPF; it is fed exact in-kernel aggregates, huge-page events,
// counters and system snapshots once per interval.
package watch

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/memtrace/memtrace/pkg/event"
	"github.com/memtrace/memtrace/pkg/sysstate"
)

// Tick is what one interval brings.
type Tick struct {
	Now     time.Time
	Alloc   []event.AllocAggregate   // names filled in
	Extfrag []event.ExtfragAggregate // names filled in
	Hugetlb []event.Event            // new huge-page events, names filled in
	Stats   map[event.Signal]event.Stats
	System  sysstate.Snapshot
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

// Model accumulates ticks into the tables. Rows of processes that have
// been idle for AgeOut are dropped, so the tables stay bounded over hours.
type Model struct {
	AgeOut   time.Duration
	MaxHuge  int
	Start    time.Time
	Last     time.Time
	Interval time.Duration

	alloc     map[uint32]*AllocProc
	frag      map[uint32]*FragProc
	huge      []HugeRow
	stacks    map[int32]*Stack
	prevAlloc map[allocKey]uint64
	prevFrag  map[fragKey]uint64

	// Totals since start, including aged-out processes.
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
	return &Model{
		AgeOut: 10 * time.Minute, MaxHuge: 50, Start: start, Last: start,
		alloc: map[uint32]*AllocProc{}, frag: map[uint32]*FragProc{}, stacks: map[int32]*Stack{},
		prevAlloc: map[allocKey]uint64{}, prevFrag: map[fragKey]uint64{},
	}
}

// Update folds one interval into the model.
func (m *Model) Update(t Tick) {
	m.Interval = t.Now.Sub(m.Last)
	m.Last = t.Now
	for _, p := range m.alloc {
		p.Recent = 0
	}
	for _, p := range m.frag {
		p.Recent = 0
	}
	m.updateAlloc(t)
	m.updateFrag(t)
	m.updateHuge(t.Hugetlb)
	m.updateStats(t.Stats)
	m.prevSystem, m.System = m.System, t.System
	if m.firstSystem.Vmstat == nil {
		m.firstSystem = t.System
	}
	m.age(t.Now)
}

// delta turns an exact in-kernel counter into what it added since the
// last read; a counter that went down was deleted and recreated.
func delta(now, prev uint64) uint64 {
	if now < prev {
		return now
	}
	return now - prev
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
	for _, a := range t.Alloc {
		k := allocKey{a.Pid, a.Order, a.GFPFlags, a.Context, a.StackID}
		d := delta(a.Count, m.prevAlloc[k])
		m.prevAlloc[k] = a.Count
		if d == 0 {
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
	for _, x := range t.Extfrag {
		k := fragKey{x.Pid, x.AllocOrder, x.FallbackOrder, x.AllocMigratetype, x.FallbackMigratetype}
		prev := m.prevFrag[k]
		d := delta(x.Count, prev)
		m.prevFrag[k] = x.Count
		if d == 0 {
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
		// Fragmenting is a separate exact counter of the same key; scale
		// its share into this interval's delta.
		if x.Count > 0 {
			p.Fragmenting += d * x.Fragmenting / x.Count
		}
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

func (m *Model) age(now time.Time) {
	m.Aged = m.Aged[:0]
	agedSet := map[uint32]bool{}
	for pid, p := range m.alloc {
		if now.Sub(p.LastSeen) > m.AgeOut {
			delete(m.alloc, pid)
			agedSet[pid] = true
		}
	}
	for pid, p := range m.frag {
		if now.Sub(p.LastSeen) > m.AgeOut {
			delete(m.frag, pid)
			agedSet[pid] = true
		}
	}
	for k := range m.prevAlloc {
		if agedSet[k.pid] {
			delete(m.prevAlloc, k)
		}
	}
	for k := range m.prevFrag {
		if agedSet[k.pid] {
			delete(m.prevFrag, k)
		}
	}
	for pid := range agedSet {
		m.Aged = append(m.Aged, pid)
	}
	sort.Slice(m.Aged, func(i, j int) bool { return m.Aged[i] < m.Aged[j] })
}

// counted is a per-process row ranked by recent, then total activity.
type counted interface {
	rank() (recent, total uint64, pid uint32)
}

func (p *AllocProc) rank() (uint64, uint64, uint32) { return p.Recent, p.Total, p.Pid }
func (p *FragProc) rank() (uint64, uint64, uint32)  { return p.Recent, p.Total, p.Pid }

// ranked returns the rows of a table, most recent activity first, then
// most activity overall, then by pid for a stable screen.
func ranked[R counted](table map[uint32]R) []R {
	rows := make([]R, 0, len(table))
	for _, p := range table {
		rows = append(rows, p)
	}
	sort.Slice(rows, func(i, j int) bool {
		ar, at, ap := rows[i].rank()
		br, bt, bp := rows[j].rank()
		if ar != br {
			return ar > br
		}
		if at != bt {
			return at > bt
		}
		return ap < bp
	})
	return rows
}

// AllocRows returns the allocation-failure rows, most recent failures
// first, then most failures overall.
func (m *Model) AllocRows() []*AllocProc { return ranked(m.alloc) }

// FragRows returns the fragmentation rows, most recent first.
func (m *Model) FragRows() []*FragProc { return ranked(m.frag) }

// HugeRows returns the huge-page rows, newest first.
func (m *Model) HugeRows() []HugeRow {
	out := make([]HugeRow, len(m.huge))
	for i, r := range m.huge {
		out[len(m.huge)-1-i] = r
	}
	return out
}

// TopStacks returns the n most frequent failing stacks.
func (m *Model) TopStacks(n int) []*Stack {
	out := make([]*Stack, 0, len(m.stacks))
	for _, s := range m.stacks {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func rankKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
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
