package event

import "time"

// ZoneVerdict says why the allocator had nothing to give, judged from the
// zones as read just after a failure.
type ZoneVerdict string

const (
	// VerdictBelowMin: free memory was at or under the watermark this
	// request must stay above (min, less what __GFP_HIGH and atomic
	// requests may dip into).
	VerdictBelowMin ZoneVerdict = "below_min"
	// VerdictFragmented: above the watermark, but no free block of the
	// order asked for or larger.
	VerdictFragmented ZoneVerdict = "fragmented"
	// VerdictNeither: some zone could have served the request when it was
	// read: a memory cgroup limit refused the pages, the request gave up
	// early (__GFP_NORETRY, __GFP_NOWARN tries), or memory was freed
	// between the failure and the read.
	VerdictNeither ZoneVerdict = "neither"
)

// ZoneState is the memory zones as read from /proc/zoneinfo and
// /proc/buddyinfo soon after an allocation failure, judged for that
// request. The first failure of a burst triggers a read; later failures
// within the session's interval reuse it (ReadAfterNs is then negative).
type ZoneState struct {
	// ReadAt is when the files were read; ReadAfterNs is that time less
	// the failure's, on the same clock (CLOCK_MONOTONIC): how stale the
	// picture is.
	ReadAt      time.Time   `json:"read_at"`
	ReadAfterNs int64       `json:"read_after_ns"`
	Verdict     ZoneVerdict `json:"verdict"`
	// Summary is the verdict in one line, e.g. "Normal: free 31 MiB, min
	// 32 MiB (GFP_ATOMIC may go to 12 MiB); no free block of order ≥ 2
	// (largest order 1)".
	Summary string `json:"summary"`
	// Zones are the zones the request could use, preferred first.
	Zones []ZoneAtFailure `json:"zones"`
}

// ZoneAtFailure is one zone as the allocator would have judged the
// request. Counts are in pages.
type ZoneAtFailure struct {
	Node int    `json:"node"`
	Zone string `json:"zone"`
	Free uint64 `json:"free_pages"`
	Min  uint64 `json:"min_pages"`
	Low  uint64 `json:"low_pages"`
	High uint64 `json:"high_pages"`
	// Mark is the level free memory had to stay above for this request:
	// min (with boost) less the reserve the request may use, plus the
	// zone's protection against requests that could use higher zones.
	Mark uint64 `json:"mark_pages"`
	// Usable is Free less what the request may not count: 2^order - 1
	// pages, and free CMA pages unless the request is movable. The
	// high-atomic reserve is not in /proc, so it is an upper bound.
	Usable        uint64 `json:"usable_pages"`
	PCPPages      uint64 `json:"pcp_pages"`
	BlocksAtLeast uint64 `json:"blocks_at_least_order"`
	LargestOrder  int    `json:"largest_order"`
	Below         bool   `json:"below_mark"`
	Fragmented    bool   `json:"fragmented"`
}
