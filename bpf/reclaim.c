// SPDX-License-Identifier: GPL-2.0
// Reclaim stalls: the time an allocating task spends reclaiming memory
// itself (direct reclaim), for its memory cgroup (memcg reclaim) or for
// its node (node reclaim, vm.zone_reclaim_mode), the sleeps of reclaim
// throttling, and kswapd: who woke it and how long it ran.
//
// The begin/end pairs do not nest in one another (each runs under
// PF_MEMALLOC, which the others refuse), and kswapd never direct-reclaims,
// so one slot per thread holds the stall in progress. The slot is keyed by
// tid, not CPU: the task sleeps and migrates during reclaim.
#include "stall.h"
#include "stall_tp.h"

struct reclaim_val {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	__u64 reclaimed;    // pages reclaimed (nr_reclaimed of the _end events)
	__u64 throttled_ns; // of the stall time, spent in mm_vmscan_throttled sleeps
	__u64 passes;       // kswapd runs: balance passes (kswapd_wake events)
	__u64 first_ns;
	__u64 last_ns;
	__u64 cgroup_id;
	__u32 last_tid;
	__u32 _pad;
	char comm[TASK_COMM_LEN];
	__u64 hist[STALL_HIST_SLOTS];
};

// One stall in progress, per thread.
struct reclaim_inflight {
	__u64 start_ns;
	__u64 throttled_ns;
	__u64 passes;
	__s32 order;
	__u32 gfp;
	__s32 nid;
	__u8 kind; // enum stall_kind
	__u8 _pad[3];
};

struct reclaim_event {
	struct event_hdr hdr;
	__u64 duration_ns;
	__u64 reclaimed;
	__u64 throttled_ns;
	__u64 passes;
	__u64 count; // value of the aggregate after this stall
	__s32 order;
	__u32 gfp;
	__s32 nid;   // -1: not known for this kind
	__u8 kind;   // enum stall_kind
	__u8 detail; // throttled: enum vmscan_throttle_state
	__u8 _pad[2];
	// With stacks only: where the stall began (the throttling sleep:
	// where it was reported). Last, so it can be left out.
	struct stall_stack stack;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} reclaim_events SEC(".maps");

DEFINE_STATS(reclaim_stats);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct stall_key);
	__type(value, struct reclaim_val);
} reclaim_agg SEC(".maps");

// LRU: a thread that exits mid-stall (it cannot, but memtrace may miss an
// end) never pins a slot.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct reclaim_inflight);
} reclaim_slots SEC(".maps");

DEFINE_STALL_STACKS(reclaim_stacks);

// Where record finds the stack of a stall it sends (defines, not an
// enum: Go never reads them).
#define STACK_NONE 0
#define STACK_SLOT 1 // kept by begin
#define STACK_NOW 2  // walked at the event itself

const struct reclaim_event *unused_reclaim_event __attribute__((unused));
const struct reclaim_val *unused_reclaim_val __attribute__((unused));
const struct reclaim_inflight *unused_reclaim_inflight __attribute__((unused));

// record adds one finished stall (or one wakeup: ns 0) to the aggregate
// and sends it when stall_send says so.
static __always_inline void record(void *pctx, __u64 pid_tgid, struct reclaim_inflight *in, __u64 ns,
				   __u64 reclaimed, __u8 ctx, __u8 detail, bool event, int from)
{
	struct stall_key key = {};
	struct reclaim_val *v;
	__u64 now = bpf_ktime_get_ns(), count = 1;
	__u32 slot = stall_slot(ns);

	stat_inc(&reclaim_stats, STAT_SEEN);
	key.memcg_id = memcg_id();
	key.tgid = pid_tgid >> 32;
	key.order = in->order;
	key.gfp = in->gfp;
	key.kind = in->kind;
	key.ctx = ctx;
	key.detail = detail;
	v = bpf_map_lookup_elem(&reclaim_agg, &key);
	if (!v) {
		struct reclaim_val init = {};
		init.first_ns = now;
		init.cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		if (bpf_map_update_elem(&reclaim_agg, &key, &init, BPF_NOEXIST) == -7 /* E2BIG */)
			stat_inc(&reclaim_stats, STAT_MAP_FULL);
		v = bpf_map_lookup_elem(&reclaim_agg, &key);
	}
	if (v) {
		count = count_one(&v->count);
		// Wakeups are counts: no time. (An atomic add of a constant 0
		// compiles to an atomic OR, which kernels before 5.12 refuse.)
		if (in->kind != STALL_KSWAPD_WAKEUP) {
			__sync_fetch_and_add(&v->total_ns, ns);
			__sync_fetch_and_add(&v->hist[slot & (STALL_HIST_SLOTS - 1)], 1);
		}
		if (reclaimed)
			__sync_fetch_and_add(&v->reclaimed, reclaimed);
		if (in->throttled_ns)
			__sync_fetch_and_add(&v->throttled_ns, in->throttled_ns);
		if (in->passes)
			__sync_fetch_and_add(&v->passes, in->passes);
		if (ns > v->max_ns)
			v->max_ns = ns;
		v->last_ns = now;
		v->last_tid = (__u32)pid_tgid;
	}
	if (!event)
		return;
	if (!stall_send(ns, count)) {
		stat_inc(&reclaim_stats, STAT_SAMPLED);
		return;
	}
	struct reclaim_event *e = bpf_ringbuf_reserve(&reclaim_events, STALL_RECORD_SIZE(struct reclaim_event), 0);
	if (!e) {
		stat_inc(&reclaim_stats, STAT_LOST);
		return;
	}
	fill_hdr(&e->hdr, EVENT_RECLAIM, ctx, pid_tgid);
	e->duration_ns = ns;
	e->reclaimed = reclaimed;
	e->throttled_ns = in->throttled_ns;
	e->passes = in->passes;
	e->count = count;
	e->order = in->order;
	e->gfp = in->gfp;
	e->nid = in->nid;
	e->kind = in->kind;
	e->detail = detail;
	e->_pad[0] = 0;
	e->_pad[1] = 0;
	if (STALL_STACKS_ON) {
		e->stack.len = 0;
		if (from == STACK_SLOT)
			stall_stack_put(&reclaim_stacks, (__u32)pid_tgid, &e->stack);
		else if (from == STACK_NOW)
			stall_stack_walk(pctx, &e->stack);
	}
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void begin(void *ctx, __u8 kind, int nid, int order, __u32 gfp)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct reclaim_inflight in = {};

	if (!passes_filters(pid_tgid))
		return;
	in.start_ns = bpf_ktime_get_ns();
	in.order = order;
	in.gfp = gfp;
	in.nid = nid;
	in.kind = kind;
	bpf_map_update_elem(&reclaim_slots, &tid, &in, BPF_ANY);
	// kswapd's own stack says nothing of who made it run.
	if (kind != STALL_KSWAPD_RUN)
		stall_stack_take(ctx, &reclaim_stacks, &reclaim_stacks_scratch, tid);
}

// finish closes the thread's stall of this kind. An end without its begin
// (memtrace started mid-stall) is ignored.
static __always_inline void finish(__u8 kind, __u64 reclaimed)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct reclaim_inflight *in = bpf_map_lookup_elem(&reclaim_slots, &tid);

	if (!in)
		return;
	if (in->kind == kind) {
		struct reclaim_inflight done = *in;
		record(NULL, pid_tgid, &done, bpf_ktime_get_ns() - done.start_ns, reclaimed, CTX_PROCESS, 0, true, STACK_SLOT);
	}
	bpf_map_delete_elem(&reclaim_slots, &tid);
	stall_stack_drop(&reclaim_stacks, tid);
}

// throttled is one sleep in reclaim_throttle(), reported after it: a stall
// of its own, and part of the thread's enclosing stall if one is open.
static __always_inline void throttled(void *ctx, int nid, int usec_delayed, __u8 reason)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u64 ns = usec_delayed > 0 ? (__u64)usec_delayed * 1000 : 0;
	struct reclaim_inflight *open = bpf_map_lookup_elem(&reclaim_slots, &tid);
	struct reclaim_inflight in = {};

	in.kind = STALL_THROTTLED;
	in.nid = nid;
	if (open) {
		__sync_fetch_and_add(&open->throttled_ns, ns);
		in.order = open->order;
		in.gfp = open->gfp;
	}
	if (!passes_filters(pid_tgid))
		return;
	record(ctx, pid_tgid, &in, ns, 0, CTX_PROCESS, reason, true, STACK_NOW);
}

// wakeup_kswapd runs on the waker, in any context: a GFP_ATOMIC request in
// a softirq wakes kswapd as well. Only real wakeups fire (kswapd asleep,
// node not balanced); gfp 0 and order 0 is the boosted-watermark wakeup
// from rmqueue, not a demand of the task.
static __always_inline void wakeup_kswapd(int nid, int order, __u32 gfp)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct reclaim_inflight in = {};

	if (!passes_filters(pid_tgid))
		return;
	in.kind = STALL_KSWAPD_WAKEUP;
	in.nid = nid;
	in.order = order;
	in.gfp = gfp;
	record(NULL, pid_tgid, &in, 0, 0, ctx_from_preempt_count(read_preempt_count()), 0, false, STACK_NONE);
}

// kswapd_wake fires on kswapd before each balance pass; its run lasts from
// the first pass to kswapd_sleep (naps included).
static __always_inline void kswapd_wake(void *ctx, int nid, int order)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct reclaim_inflight *in = bpf_map_lookup_elem(&reclaim_slots, &tid);

	if (in && in->kind == STALL_KSWAPD_RUN) {
		__sync_fetch_and_add(&in->passes, 1);
		return;
	}
	begin(ctx, STALL_KSWAPD_RUN, nid, order, 0);
	in = bpf_map_lookup_elem(&reclaim_slots, &tid);
	if (in)
		in->passes = 1;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(direct_begin_btf, int order, gfp_t gfp_flags)
{
	begin(ctx, STALL_DIRECT_RECLAIM, -1, order, gfp_flags);
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(direct_end_btf, unsigned long nr_reclaimed)
{
	finish(STALL_DIRECT_RECLAIM, nr_reclaimed);
	return 0;
}

// memcg begin reports order 0 and a rewritten GFP mask, whatever the
// charge that stalled (try_to_free_mem_cgroup_pages).
SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(memcg_begin_btf, int order, gfp_t gfp_flags)
{
	begin(ctx, STALL_MEMCG_RECLAIM, -1, order, gfp_flags);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(memcg_end_btf, unsigned long nr_reclaimed)
{
	finish(STALL_MEMCG_RECLAIM, nr_reclaimed);
	return 0;
}

SEC("tp_btf/mm_vmscan_node_reclaim_begin")
int BPF_PROG(node_begin_btf, int nid, int order, gfp_t gfp_flags)
{
	begin(ctx, STALL_NODE_RECLAIM, nid, order, gfp_flags);
	return 0;
}

SEC("tp_btf/mm_vmscan_node_reclaim_end")
int BPF_PROG(node_end_btf, unsigned long nr_reclaimed)
{
	finish(STALL_NODE_RECLAIM, nr_reclaimed);
	return 0;
}

// 5.16 and later; the reason is the enum value here, 1 << value in the
// classic record.
SEC("tp_btf/mm_vmscan_throttled")
int BPF_PROG(throttled_btf, int nid, int usec_timeout, int usec_delayed, int reason)
{
	throttled(ctx, nid, usec_delayed, reason);
	return 0;
}

SEC("tp_btf/mm_vmscan_wakeup_kswapd")
int BPF_PROG(wakeup_kswapd_btf, int nid, int zid, int order, gfp_t gfp_flags)
{
	wakeup_kswapd(nid, order, gfp_flags);
	return 0;
}

SEC("tp_btf/mm_vmscan_kswapd_wake")
int BPF_PROG(kswapd_wake_btf, int nid, int zid, int order)
{
	kswapd_wake(ctx, nid, order);
	return 0;
}

SEC("tp_btf/mm_vmscan_kswapd_sleep")
int BPF_PROG(kswapd_sleep_btf, int nid)
{
	finish(STALL_KSWAPD_RUN, 0);
	return 0;
}

#include "reclaim_classic.h"
