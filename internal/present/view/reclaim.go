package view

import (
	"fmt"

	"github.com/memtrace/memtrace/internal/event"
)

// The reclaim family: reclaim stalls (direct, memory-cgroup, node),
// throttling sleeps and kswapd's runs, each counted and timed in the
// kernel, and kswapd wakeups by their waker (counted, not timed), under
// "reclaim".
func init() {
	Register(Family{
		Signal:  event.SignalReclaim,
		Section: "reclaim",
		Rows: RowsOf(func(r event.ReclaimAggregate) Count {
			return Count{
				Task:   r.Task,
				Key:    fmt.Sprintf("%d/%s/%s/%d/%x/%d", r.MemcgID, r.Context, r.Kind, r.Order, uint64(r.GFPFlags), r.ThrottleReasonValue),
				Labels: []string{string(r.Kind)},
				N:      r.Count,
				Time:   reclaimed(r),
			}
		}),
		Table:  "Reclaim stalls by process",
		Metric: "reclaim_stalls",
		Help:   "Reclaim stalls counted exactly in the kernel: kind direct_reclaim (an allocation reclaimed memory itself), memcg_reclaim (a charge reclaimed in its memory cgroup), node_reclaim (vm.zone_reclaim_mode), throttled (a reclaim throttling sleep), kswapd_run (kswapd, woken until it sleeps), kswapd_wakeup (this process woke kswapd; not a stall).",
		Timing: &Timing{Metric: "reclaim_stall", Pages: "RECLAIMED",
			Help: "How long reclaim stalls took, from the in-kernel log2 histogram (buckets at powers of two microseconds); kswapd wakeups are not timed. kind as in memtrace_reclaim_stalls_total."},
		Dimensions: []Dimension{{Label: "kind", Header: "KIND"}},
	})
}

// reclaimed is a row's time and the pages it reclaimed: the outcome of a
// reclaim stall.
func reclaimed(r event.ReclaimAggregate) *Durations {
	d := DurationsOf(r.StallTotals)
	d.Pages = r.Reclaimed
	return d
}
