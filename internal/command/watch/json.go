package watch

import (
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/burst"
	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Summary is the periodic NDJSON line of `watch --json`, between event
// lines (which are event.Event objects, as in a capture's "events").
type Summary struct {
	Kind          string         `json:"kind"` // "summary"
	Time          time.Time      `json:"time"`
	IntervalS     float64        `json:"interval_s"`
	Final         bool           `json:"final,omitempty"`
	AllocFailures []SummaryAlloc `json:"alloc_failures"`
	Extfrag       []SummaryFrag  `json:"extfrag"`
	Hugetlb       SummaryHuge    `json:"hugetlb"`
	// Families holds the rows of the families drawn from their views
	// (internal/present/view), by signal; omitted when there are none.
	Families map[event.Signal][]SummaryCount `json:"families,omitempty"`
	// THPFallbacks are the THP fallbacks by process, kept out of
	// AllocFailures; Bursts the last failure bursts with the zone state
	// read at each (oldest first); AtomicDemand what vm.min_free_kbytes
	// must cover, when counted; LongStalls the stalls over
	// --stall-threshold since start (the events themselves are streamed).
	THPFallbacks []SummaryTHP                 `json:"thp_fallbacks"`
	Bursts       []burst.Burst                `json:"failure_bursts,omitempty"`
	AtomicDemand *SummaryDemand               `json:"atomic_demand,omitempty"`
	LongStalls   *uint64                      `json:"long_stalls,omitempty"`
	Stats        map[event.Signal]event.Stats `json:"stats"`
	EventsPerSec float64                      `json:"events_per_sec"`
	Hooks        []event.HookStatus           `json:"hooks"`
	System       sysstate.Snapshot            `json:"system"`
}

// SummaryAlloc is one process's allocation failures.
type SummaryAlloc struct {
	Pid      uint32            `json:"pid"`
	Comm     string            `json:"comm"`
	Cgroup   string            `json:"cgroup,omitempty"`
	Recent   uint64            `json:"recent"`
	Total    uint64            `json:"total"`
	Orders   []uint32          `json:"orders"`
	GFP      []string          `json:"gfp"`
	Atomic   uint64            `json:"atomic"`
	Contexts map[string]uint64 `json:"contexts"`
}

// SummaryFrag is one process's fragmentation events.
type SummaryFrag struct {
	Pid            uint32            `json:"pid"`
	Comm           string            `json:"comm"`
	Recent         uint64            `json:"recent"`
	Total          uint64            `json:"total"`
	Fragmenting    uint64            `json:"fragmenting"`
	Migratetypes   map[string]uint64 `json:"migratetypes"`
	FallbackOrders []int32           `json:"fallback_orders"`
}

// SummaryTHP is one process's THP fallbacks.
type SummaryTHP struct {
	Pid    uint32 `json:"pid"`
	Comm   string `json:"comm"`
	Recent uint64 `json:"recent"`
	Total  uint64 `json:"total"`
}

// SummaryDemand is the atomic demand measured since start (pages): the
// peaks per interval and per second, the latest ones, and the error
// that stopped its reading, if any.
type SummaryDemand struct {
	demand.Summary
	Latest demand.Latest `json:"latest"`
	Error  string        `json:"error,omitempty"`
}

// SummaryHuge counts huge-page requests since start.
type SummaryHuge struct {
	Requests  uint64 `json:"requests"`
	Failed    uint64 `json:"failed"`
	Fallbacks uint64 `json:"fallbacks"`
}

// Summarize builds the NDJSON summary of the model's current state.
func Summarize(m *Model, hooks []event.HookStatus, final bool) Summary {
	s := Summary{
		Kind: "summary", Time: m.Last.UTC(), IntervalS: m.Interval.Seconds(), Final: final,
		AllocFailures: []SummaryAlloc{}, Extfrag: []SummaryFrag{},
		Hugetlb: SummaryHuge{m.TotalHuge, m.TotalHugeFailed, m.TotalFallbacks},
		Stats:   m.Stats, EventsPerSec: m.EventsPerSec, Hooks: hooks, System: m.System,
		Families: summarizeCounted(m),
	}
	for _, p := range m.AllocRows() {
		ctx := map[string]uint64{}
		for k, v := range p.Contexts {
			ctx[k.String()] = v
		}
		s.AllocFailures = append(s.AllocFailures, SummaryAlloc{
			Pid: p.Pid, Comm: p.Comm, Cgroup: p.Cgroup, Recent: p.Recent, Total: p.Total,
			Orders: p.Orders, GFP: p.GFP, Atomic: p.Atomic, Contexts: ctx,
		})
	}
	thp, _ := m.THPRows()
	s.THPFallbacks = make([]SummaryTHP, 0, len(thp))
	for _, p := range thp {
		s.THPFallbacks = append(s.THPFallbacks, SummaryTHP{Pid: p.Pid, Comm: p.Comm, Recent: p.Recent, Total: p.Total})
	}
	if b, total := m.Bursts(); total > 0 {
		s.Bursts = b
	}
	if d := m.Demand(); d != nil {
		s.AtomicDemand = &SummaryDemand{Summary: d.Summary, Latest: d.Latest}
		if d.Err != nil {
			s.AtomicDemand.Error = d.Err.Error()
		}
	}
	if m.why.stallThreshold > 0 {
		n := m.why.longStalls
		s.LongStalls = &n
	}
	for _, p := range m.FragRows() {
		s.Extfrag = append(s.Extfrag, SummaryFrag{
			Pid: p.Pid, Comm: p.Comm, Recent: p.Recent, Total: p.Total, Fragmenting: p.Fragmenting,
			Migratetypes: p.Pairs, FallbackOrders: p.Orders,
		})
	}
	return s
}
