// SPDX-License-Identifier: GPL-2.0
// What the reclaim and compaction families share: the kinds of stall, the
// aggregation key and the log2 latency histogram.
#pragma once

#include "common.h"

// What a task waited for (or, for the wakeups, whom it woke). One
// numbering for both families, so a stall row reads the same whichever
// family it comes from.
enum stall_kind {
	STALL_DIRECT_RECLAIM = 1,   // mm_vmscan_direct_reclaim_begin/_end
	STALL_MEMCG_RECLAIM = 2,    // mm_vmscan_memcg_reclaim_begin/_end
	STALL_NODE_RECLAIM = 3,     // mm_vmscan_node_reclaim_begin/_end (zone_reclaim_mode)
	STALL_THROTTLED = 4,        // mm_vmscan_throttled: one sleep in reclaim_throttle()
	STALL_KSWAPD_WAKEUP = 5,    // mm_vmscan_wakeup_kswapd, on the waker: a count
	STALL_KSWAPD_RUN = 6,       // kswapd itself, from its first kswapd_wake to kswapd_sleep
	STALL_COMPACTION = 7,       // one direct compaction call (try_to_compact_pages)
	STALL_KCOMPACTD_WAKEUP = 8, // mm_compaction_wakeup_kcompactd, on the waker: a count
};

// Log2 histogram of stall time: slot 0 holds stalls under 2 us, slot k
// those in [2^k, 2^(k+1)) us, the last slot everything longer.
#define STALL_HIST_SLOTS 32

// Aggregation key of both families: per process and memory cgroup, per
// kind and per allocation (order and GFP flags of the request that
// stalled). A process has few distinct stalling requests, so the key
// stays small while keeping the attribution exact.
struct stall_key {
	__u64 memcg_id; // the task's memory cgroup (v1 or v2)
	__u32 tgid;
	__s32 order;
	__u32 gfp;     // gfp_t is 32 bits on every kernel
	__u8 kind;     // enum stall_kind
	__u8 ctx;      // enum exec_ctx: wakeups may come from interrupts
	__u8 detail;   // compaction: enum compact_priority; throttled: enum vmscan_throttle_state
	__u8 _pad;
};

const enum stall_kind *unused_stall_kind __attribute__((unused));
const struct stall_key *unused_stall_key __attribute__((unused));

// stall_slot returns the histogram slot of a duration in ns.
static __always_inline __u32 stall_slot(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 s = 0;

	if (us >= (1ULL << 32)) {
		us >>= 32;
		s += 32;
	}
	if (us >= (1ULL << 16)) {
		us >>= 16;
		s += 16;
	}
	if (us >= (1ULL << 8)) {
		us >>= 8;
		s += 8;
	}
	if (us >= (1ULL << 4)) {
		us >>= 4;
		s += 4;
	}
	if (us >= (1ULL << 2)) {
		us >>= 2;
		s += 2;
	}
	if (us >= 2)
		s += 1;
	return s < STALL_HIST_SLOTS ? s : STALL_HIST_SLOTS - 1;
}

// stall_send decides whether one stall goes to the ring buffer: every
// stall at least CFG.stall_min_ns long when a threshold is set, else the
// sampled ones (should_send on the aggregate's count). The aggregates
// count every stall either way.
static __always_inline bool stall_send(__u64 ns, __u64 count)
{
	if (CFG.stall_min_ns)
		return ns >= CFG.stall_min_ns;
	return should_send(count);
}
