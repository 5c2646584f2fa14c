package watch

import (
	"time"

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
	Families     map[event.Signal][]SummaryCount `json:"families,omitempty"`
	Stats        map[event.Signal]event.Stats    `json:"stats"`
	EventsPerSec float64                         `json:"events_per_sec"`
	Hooks        []event.HookStatus              `json:"hooks"`
	System       sysstate.Snapshot               `json:"system"`
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
	for _, p := range m.FragRows() {
		s.Extfrag = append(s.Extfrag, SummaryFrag{
			Pid: p.Pid, Comm: p.Comm, Recent: p.Recent, Total: p.Total, Fragmenting: p.Fragmenting,
			Migratetypes: p.Pairs, FallbackOrders: p.Orders,
		})
	}
	return s
}
