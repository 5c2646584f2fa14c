package event

import (
	"math"
	"time"
)

// StallKind says what a task waited for, or, for the wakeups, whom it
// woke. The reclaim and compaction signals share it.
type StallKind string

const (
	// StallDirectReclaim: the allocating task reclaimed memory itself.
	StallDirectReclaim StallKind = "direct_reclaim"
	// StallMemcgReclaim: a charge reclaimed within its memory cgroup (or
	// a write to memory.high, memory.max or memory.reclaim did).
	StallMemcgReclaim StallKind = "memcg_reclaim"
	// StallNodeReclaim: vm.zone_reclaim_mode reclaimed the local node
	// before the allocation could go to another one.
	StallNodeReclaim StallKind = "node_reclaim"
	// StallThrottled: one sleep of reclaim throttling (5.16+).
	StallThrottled StallKind = "throttled"
	// StallKswapdWakeup: the task woke kswapd (a count, no time).
	StallKswapdWakeup StallKind = "kswapd_wakeup"
	// StallKswapdRun: kswapd itself, from its first balance pass to sleep.
	StallKswapdRun StallKind = "kswapd_run"
	// StallCompaction: one direct compaction call.
	StallCompaction StallKind = "compaction"
	// StallKcompactdWakeup: the task woke kcompactd (a count, no time).
	StallKcompactdWakeup StallKind = "kcompactd_wakeup"
)

// StallHistogram is an in-kernel log2 histogram of stall time: slot 0
// counts stalls under 2 µs, slot k those in [2^k, 2^(k+1)) µs, the last
// slot (31) everything longer. Trailing empty slots are left out.
type StallHistogram []uint64

// SlotBound is the upper end of slot k, exclusive.
func SlotBound(k int) time.Duration {
	if k >= 31 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(uint64(2)<<uint(k)) * time.Microsecond
}

// Count is the number of stalls in the histogram.
func (h StallHistogram) Count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile returns the upper bound of the slot holding the q-quantile
// (0 < q <= 1) of the stalls, 0 for an empty histogram: "p99 < 8ms".
func (h StallHistogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for k, c := range h {
		seen += c
		if seen >= rank {
			return SlotBound(k)
		}
	}
	return SlotBound(len(h) - 1)
}

// StallTotals are the exact in-kernel totals of one aggregate row.
type StallTotals struct {
	Count     uint64         `json:"count"`
	TotalNs   uint64         `json:"total_ns"`
	MaxNs     uint64         `json:"max_ns"`
	Histogram StallHistogram `json:"histogram"`
}

// ReclaimStall is one reclaim stall, one throttling sleep or one kswapd
// run. Events are sampled (or only those over the stall threshold are
// sent); the aggregates count every stall.
type ReclaimStall struct {
	Kind StallKind `json:"kind"`
	// Order and GFP flags of the allocation that stalled. A memcg reclaim
	// always reports order 0 and a rewritten mask (the kernel's event does
	// not carry the charge's); a throttling sleep carries those of the
	// stall it happened in, if any; a kswapd run the order it was woken
	// for.
	Order    int32  `json:"order"`
	GFPFlags Hex    `json:"gfp_flags"`
	GFP      string `json:"gfp"`
	// Node is the NUMA node (node reclaim, throttling, kswapd); -1 when
	// the event does not say.
	Node       int32  `json:"node"`
	DurationNs uint64 `json:"duration_ns"`
	// Reclaimed is the number of pages the stall reclaimed.
	Reclaimed uint64 `json:"reclaimed_pages"`
	// ThrottledNs is the part of the stall spent in throttling sleeps.
	ThrottledNs uint64 `json:"throttled_ns,omitempty"`
	// Passes counts a kswapd run's balance passes.
	Passes uint64 `json:"passes,omitempty"`
	// ThrottleReason names a throttling sleep's reason, from the running
	// kernel's enum vmscan_throttle_state ("writeback", "noprogress", …).
	ThrottleReasonValue uint8  `json:"throttle_reason_value,omitempty"`
	ThrottleReason      string `json:"throttle_reason,omitempty"`
	// Count is the aggregate's count when this stall was recorded.
	Count uint64 `json:"count"`
	StallStack
}

// StallStack is the kernel stack of a stall, taken where it began (a
// throttling sleep's where it was reported). The kernel takes it only
// when a stall threshold is set (loader.Config.StallThreshold), for the
// stalls over it.
type StallStack struct {
	// StackAddrs are the return addresses, innermost first; Stack the
	// same symbolized (without the tracer's frames) when the session
	// names stacks.
	StackAddrs []uint64 `json:"-"`
	Stack      []string `json:"stack,omitempty"`
}

// CompactionStall is one direct compaction call, sent when it ended:
// when the thread next compacted or reclaimed, or when the allocation got
// its page. Its duration runs from the call to its last compaction event,
// so it is short by the tail of the zone loop (microseconds).
type CompactionStall struct {
	Order    int32  `json:"order"`
	GFPFlags Hex    `json:"gfp_flags"`
	GFP      string `json:"gfp"`
	// Priority is the kernel's enum compact_priority value and name
	// ("async", "sync_light", "sync_full").
	PriorityValue int32  `json:"priority_value"`
	Priority      string `json:"priority"`
	// Outcome is the value try_to_compact_pages() returned (enum
	// compact_result of the running kernel) and its name ("skipped",
	// "deferred", "complete", "success", …).
	OutcomeValue int32  `json:"outcome_value"`
	Outcome      string `json:"outcome"`
	// PageObtained: the allocation got its page right after.
	PageObtained bool      `json:"page_obtained"`
	Start        time.Time `json:"start"`
	StartNs      uint64    `json:"start_mono_ns"`
	DurationNs   uint64    `json:"duration_ns"`
	Count        uint64    `json:"count"`
	StallStack
}

// ReclaimAggregate is the exact in-kernel total of one (process, memory
// cgroup, kind, order, GFP flags[, throttle reason]).
type ReclaimAggregate struct {
	Task
	Context  Context   `json:"context"`
	Kind     StallKind `json:"kind"`
	Order    int32     `json:"order"`
	GFPFlags Hex       `json:"gfp_flags"`
	GFP      string    `json:"gfp"`
	// ThrottleReason: throttled rows only.
	ThrottleReasonValue uint8  `json:"throttle_reason_value,omitempty"`
	ThrottleReason      string `json:"throttle_reason,omitempty"`
	StallTotals
	Reclaimed   uint64    `json:"reclaimed_pages"`
	ThrottledNs uint64    `json:"throttled_ns"`
	Passes      uint64    `json:"passes,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
}

// OutcomeCount is how many compaction calls ended with one outcome.
type OutcomeCount struct {
	Value int32  `json:"value"`
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// CompactionAggregate is the exact in-kernel total of one (process,
// memory cgroup, kind, order, GFP flags, priority). Kind is compaction, or
// kcompactd_wakeup (a count: Context, Order and the waker only).
type CompactionAggregate struct {
	Task
	Context       Context   `json:"context"`
	Kind          StallKind `json:"kind"`
	Order         int32     `json:"order"`
	GFPFlags      Hex       `json:"gfp_flags"`
	GFP           string    `json:"gfp"`
	PriorityValue int32     `json:"priority_value"`
	Priority      string    `json:"priority,omitempty"`
	StallTotals
	// Outcomes counts the calls by outcome, non-zero ones only. A call
	// still running counts under its outcome so far.
	Outcomes     []OutcomeCount `json:"outcomes,omitempty"`
	PageObtained uint64         `json:"page_obtained"`
	FirstSeen    time.Time      `json:"first_seen"`
	LastSeen     time.Time      `json:"last_seen"`
}

// LastCompaction is a thread's most recent direct compaction call, for an
// allocation failure to say what preceded it ("after a deferred
// compaction 3 ms earlier").
type LastCompaction struct {
	Pid           uint32    `json:"pid"`
	Tid           uint32    `json:"tid"`
	Order         int32     `json:"order"`
	GFPFlags      Hex       `json:"gfp_flags"`
	PriorityValue int32     `json:"priority_value"`
	Priority      string    `json:"priority"`
	OutcomeValue  int32     `json:"outcome_value"`
	Outcome       string    `json:"outcome"`
	PageObtained  bool      `json:"page_obtained"`
	Open          bool      `json:"open"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	StartNs       uint64    `json:"start_mono_ns"`
	EndNs         uint64    `json:"end_mono_ns"`
}

// Failed reports whether the call ended without a page for the
// allocation: skipped, deferred or a compaction that did not free a block.
func (l LastCompaction) Failed() bool { return !l.PageObtained }
