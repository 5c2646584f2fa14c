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

// log2_step is 1 when x >> shift is not zero, for x < 2^(2*shift),
// without a branch: ((x >> shift) + 2^shift - 1) >> shift. The barrier
// keeps clang from folding it back into a comparison, which on BPF is a
// branch.
#define log2_step(x, shift)                                                      \
	({                                                                          \
		__u64 __hi = (x) >> (shift);                                        \
		asm volatile("" : "+r"(__hi));                                      \
		(__u32)((__hi + ((1ULL << (shift)) - 1)) >> (shift));               \
	})

// stall_slot returns the histogram slot of a duration in ns: floor(log2)
// of the microseconds, 0 under 2 us, at most STALL_HIST_SLOTS - 1. It has
// no branch on purpose: the verifier walks every path of a program, and
// a slot computed by six ifs kept six-fold different (precise) values
// alive through the rest of the program, most of the stall programs'
// ~10^4 verified instructions each and of memtrace's start-up time.
static __always_inline __u32 stall_slot(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 s = 0, t;

	t = log2_step(us, 32) << 5; // us < 2^64
	us >>= t;
	s += t;
	t = log2_step(us, 16) << 4; // us < 2^32
	us >>= t;
	s += t;
	t = log2_step(us, 8) << 3;
	us >>= t;
	s += t;
	t = log2_step(us, 4) << 2;
	us >>= t;
	s += t;
	t = log2_step(us, 2) << 1;
	us >>= t;
	s += t;
	s += (__u32)(us >> 1); // us < 4
	// s <= 63: clamp to the last slot without a branch.
	__u32 over = (s >> 5) & 1;
	return (s & (over - 1)) | ((STALL_HIST_SLOTS - 1) & -over);
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

// Kernel stack of a stall, taken where it began, only when asked for
// (STALL_STACKS) with a threshold (CFG.stall_min_ns): the stalls over it
// are sent with their stack. The begin hooks do not know yet how long the
// stall will be, so each stalling thread keeps its stack in a slot until
// its end: a stack walk per stall (microseconds), hence opt-in.
#define STALL_STACK_DEPTH 32
struct stall_stack {
	__u64 ips[STALL_STACK_DEPTH]; // return addresses, innermost first
	__u32 len;                    // frames in ips
	__u32 _pad;
};

const struct stall_stack *unused_stall_stack __attribute__((unused));

// Set by the loader (loader.Config.StallStacks); apart from struct
// memtrace_config, which every family shares, since only these two read it.
volatile const __u32 STALL_STACKS = 0;
#define STALL_STACKS_ON (CFG.stall_min_ns && STALL_STACKS)

// A family's stack slots (LRU, keyed by tid: a thread that never ends its
// stall does not pin one; 1024 slots, about 300 KiB, one slot set by the
// loader without stacks) and the per-CPU buffer a stack is walked
// into (too large for the BPF stack).
#define DEFINE_STALL_STACKS(name)                                              \
	struct {                                                                \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                           \
		__uint(max_entries, 1024);                                      \
		__type(key, __u32);                                             \
		__type(value, struct stall_stack);                             \
	} name SEC(".maps");                                                    \
	struct {                                                                \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                       \
		__uint(max_entries, 1);                                         \
		__type(key, __u32);                                             \
		__type(value, struct stall_stack);                             \
	} name##_scratch SEC(".maps")

// stall_stack_walk fills st with the current kernel stack.
static __always_inline void stall_stack_walk(void *ctx, struct stall_stack *st)
{
	long n = bpf_get_stack(ctx, st->ips, sizeof(st->ips), 0);
	st->len = n > 0 ? (__u32)n >> 3 : 0;
}

// stall_stack_take keeps the thread's stack in its slot, with a threshold.
static __always_inline void stall_stack_take(void *ctx, void *slots, void *scratch, __u32 tid)
{
	__u32 zero = 0;
	struct stall_stack *st;

	if (!STALL_STACKS_ON)
		return;
	st = bpf_map_lookup_elem(scratch, &zero);
	if (!st)
		return;
	stall_stack_walk(ctx, st);
	bpf_map_update_elem(slots, &tid, st, BPF_ANY);
}

// stall_stack_put copies the thread's kept stack into a record (none: an
// empty stack).
static __always_inline void stall_stack_put(void *slots, __u32 tid, struct stall_stack *dst)
{
	struct stall_stack *st = bpf_map_lookup_elem(slots, &tid);

	if (!st) {
		dst->len = 0;
		return;
	}
	__builtin_memcpy(dst, st, sizeof(*dst));
}

// stall_stack_drop frees the thread's slot once its stall ended.
static __always_inline void stall_stack_drop(void *slots, __u32 tid)
{
	if (STALL_STACKS_ON)
		bpf_map_delete_elem(slots, &tid);
}

// The size to reserve for a record ending in a struct stall_stack: all
// of it with stacks, without the stack otherwise (the loader pads the
// record back). Both are frozen constants: the verifier sees one size.
#define STALL_RECORD_SIZE(type) \
	(STALL_STACKS_ON ? sizeof(type) : __builtin_offsetof(type, stack))
