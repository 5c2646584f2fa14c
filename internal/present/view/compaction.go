package view

import (
	"fmt"

	"github.com/memtrace/memtrace/internal/event"
)

// The compaction family: direct compaction calls, counted and timed in
// the kernel with their outcome, and kcompactd wakeups by their waker
// (counted, not timed), under "compaction". A call still running counts
// under its outcome so far, so outcomes are shown as read (AsRead).
func init() {
	Register(Family{
		Signal:  event.SignalCompaction,
		Section: "compaction",
		Rows: RowsOf(func(c event.CompactionAggregate) Count {
			n := Count{
				Task:   c.Task,
				Key:    fmt.Sprintf("%d/%s/%s/%d/%x/%d", c.MemcgID, c.Context, c.Kind, c.Order, uint64(c.GFPFlags), c.PriorityValue),
				Labels: []string{string(c.Kind), ""},
				N:      c.Count,
				Time:   DurationsOf(c.StallTotals),
			}
			for _, o := range c.Outcomes {
				if n.Parts == nil {
					n.Parts = map[string]uint64{}
				}
				name := o.Name
				if name == "" {
					name = fmt.Sprint(o.Value)
				}
				n.Parts[name] += o.Count
			}
			return n
		}),
		Table:  "Compaction stalls by process",
		Metric: "compaction_stalls",
		Help:   "Direct compaction calls counted exactly in the kernel (kind compaction), and kcompactd wakeups by the process that woke it (kind kcompactd_wakeup; not a stall). Their outcomes are in the capture document and memtrace watch.",
		Timing: &Timing{Metric: "compaction_stall",
			Help: "How long direct compaction calls took, from the in-kernel log2 histogram (buckets at powers of two microseconds); a call still running is counted with its time so far."},
		Dimensions: []Dimension{{Label: "kind", Header: "KIND"}, {Label: "outcome", Header: "OUTCOME", AsRead: true}},
	})
}
