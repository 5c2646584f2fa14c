// SPDX-License-Identifier: GPL-2.0
// Compaction stalls: direct compaction by an allocating task (order, GFP
// flags, priority, time taken, outcome) and the wakeups of kcompactd.
//
// No tracepoint marks the return of try_to_compact_pages(), so each call
// is a window per thread: it opens at mm_compaction_try_to_compact_pages,
// the thread's deferred, suitable, end and defer_reset events update it,
// and it closes at the thread's next compaction or reclaim, or once the
// allocation got its page. Its latency runs from the open to the last
// event inside; its outcome follows the kernel's rule, rc = max(rc,
// status) over enum compact_result, read from the running kernel by CO-RE.
// The aggregate moves with every event of an open window, so it never
// waits for a close that may come late; the closed window stays in
// compact_windows as the thread's last compaction.
#include "stall.h"
#include "stall_tp.h"

#define OUTCOME_SLOTS 16

struct compact_val {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	__u64 page_obtained; // calls after which the allocation got its page
	__u64 first_ns;
	__u64 last_ns;
	__u64 cgroup_id;
	__u32 last_tid;
	__u32 _pad;
	char comm[TASK_COMM_LEN];
	__u64 outcomes[OUTCOME_SLOTS]; // calls by enum compact_result value
	__u64 hist[STALL_HIST_SLOTS];
};

// A thread's direct compaction call: open while running, then its last.
struct compact_window {
	struct stall_key key; // the aggregate it counts in
	__u64 start_ns;
	__u64 last_ns;     // the last compaction event of the call
	__u8 rc;           // enum compact_result so far
	__u8 slot;         // histogram slot it is counted in so far
	__u8 saw_success;  // a zone reported COMPACT_SUCCESS itself
	__u8 resets;       // mm_compaction_defer_reset events
	__u8 obtained;     // the allocation got its page
	__u8 open;
	__u8 send;         // sampled for the ring buffer at open
	__u8 _pad;
};

struct compaction_event {
	struct event_hdr hdr;
	__u64 start_ns;
	__u64 duration_ns;
	__u64 count; // calls in the aggregate when this one opened
	__s32 order;
	__u32 gfp;
	__u8 prio;     // enum compact_priority
	__u8 outcome;  // enum compact_result
	__u8 obtained;
	__u8 _pad[5];
	// With stacks only: where the call began. Last, so it can be left
	// out.
	struct stall_stack stack;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} compaction_events SEC(".maps");

DEFINE_STATS(compaction_stats);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct stall_key);
	__type(value, struct compact_val);
} compact_agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct compact_window);
} compact_windows SEC(".maps");

// Where a new aggregate's first value is built: too large for the stack.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct compact_val);
} compact_scratch SEC(".maps");

DEFINE_STALL_STACKS(compact_stacks);

const struct compact_val *unused_compact_val __attribute__((unused));
const struct compact_window *unused_compact_window __attribute__((unused));
const struct compaction_event *unused_compaction_event __attribute__((unused));

#define CR(name) ((__u8)bpf_core_enum_value(enum compact_result, name))

static __always_inline struct compact_val *agg_get(struct stall_key *key, __u64 now)
{
	struct compact_val *v = bpf_map_lookup_elem(&compact_agg, key);
	if (v)
		return v;
	__u32 zero = 0;
	struct compact_val *init = bpf_map_lookup_elem(&compact_scratch, &zero);
	if (!init)
		return NULL;
	__builtin_memset(init, 0, sizeof(*init));
	init->first_ns = now;
	init->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(init->comm, sizeof(init->comm));
	if (bpf_map_update_elem(&compact_agg, key, init, BPF_NOEXIST) == -7 /* E2BIG */)
		stat_inc(&compaction_stats, STAT_MAP_FULL);
	return bpf_map_lookup_elem(&compact_agg, key);
}

// close_window ends the thread's open window and sends it if chosen.
static __always_inline void close_window(__u64 pid_tgid)
{
	__u32 tid = (__u32)pid_tgid;
	struct compact_window *w = bpf_map_lookup_elem(&compact_windows, &tid);

	if (!w || !w->open)
		return;
	w->open = 0;
	__u64 ns = w->last_ns - w->start_ns;
	bool send = CFG.stall_min_ns ? ns >= CFG.stall_min_ns : w->send;
	if (!send) {
		stat_inc(&compaction_stats, STAT_SAMPLED);
		stall_stack_drop(&compact_stacks, tid);
		return;
	}
	struct compaction_event *e = bpf_ringbuf_reserve(&compaction_events, STALL_RECORD_SIZE(struct compaction_event), 0);
	if (!e) {
		stat_inc(&compaction_stats, STAT_LOST);
		stall_stack_drop(&compact_stacks, tid);
		return;
	}
	fill_hdr(&e->hdr, EVENT_COMPACTION, CTX_PROCESS, pid_tgid);
	e->start_ns = w->start_ns;
	e->duration_ns = ns;
	struct compact_val *v = bpf_map_lookup_elem(&compact_agg, &w->key);
	e->count = v ? v->count : 0;
	e->order = w->key.order;
	e->gfp = w->key.gfp;
	e->prio = w->key.detail;
	e->outcome = w->rc;
	e->obtained = w->obtained;
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	if (STALL_STACKS_ON) {
		stall_stack_put(&compact_stacks, tid, &e->stack);
		stall_stack_drop(&compact_stacks, tid);
	}
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void open_window(void *ctx, int order, __u32 gfp, int prio)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u64 now = bpf_ktime_get_ns(), count = 1;
	struct compact_window w = {};

	close_window(pid_tgid);
	if (!passes_filters(pid_tgid))
		return;
	stat_inc(&compaction_stats, STAT_SEEN);
	w.key.memcg_id = memcg_id();
	w.key.tgid = pid_tgid >> 32;
	w.key.order = order;
	w.key.gfp = gfp;
	w.key.kind = STALL_COMPACTION;
	w.key.ctx = CTX_PROCESS;
	w.key.detail = prio;
	w.start_ns = now;
	w.last_ns = now;
	w.rc = CR(COMPACT_SKIPPED);
	w.open = 1;
	struct compact_val *v = agg_get(&w.key, now);
	if (v) {
		count = count_one(&v->count);
		__sync_fetch_and_add(&v->outcomes[w.rc & (OUTCOME_SLOTS - 1)], 1);
		__sync_fetch_and_add(&v->hist[0], 1);
		v->last_ns = now;
		v->last_tid = tid;
	}
	w.send = should_send(count);
	bpf_map_update_elem(&compact_windows, &tid, &w, BPF_ANY);
	stall_stack_take(ctx, &compact_stacks, &compact_stacks_scratch, tid);
}

// update moves the thread's open call to a new outcome, latency and page
// state, in the window and in its aggregate. It returns the window, or
// NULL if the thread has none open for this order (mm_compaction_end has
// no order: ANY_ORDER).
#define ANY_ORDER (-1)
static __always_inline struct compact_window *update(int order, int status, bool reset)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct compact_window *w = bpf_map_lookup_elem(&compact_windows, &tid);

	if (!w || !w->open || (order != ANY_ORDER && w->key.order != order))
		return NULL;
	__u64 now = bpf_ktime_get_ns();
	__u8 rc = w->rc, obtained = w->obtained;
	if (status >= 0) {
		if ((__u8)status > rc)
			rc = status;
		if ((__u8)status == CR(COMPACT_SUCCESS))
			w->saw_success = 1;
	}
	if (reset) {
		// A first reset without a zone's own SUCCESS is the success
		// path (captured page; met watermark, silent on 6.12+); a reset
		// after a SUCCESS is the allocation getting its page.
		w->resets++;
		if (w->resets == 1 && !w->saw_success && CR(COMPACT_SUCCESS) > rc)
			rc = CR(COMPACT_SUCCESS);
		obtained = w->resets >= (w->saw_success ? 2 : 1);
	}
	__u64 ns = now - w->start_ns;
	__u32 slot = stall_slot(ns);
	struct compact_val *v = bpf_map_lookup_elem(&compact_agg, &w->key);
	if (v) {
		__sync_fetch_and_add(&v->total_ns, now - w->last_ns);
		if (slot != w->slot) {
			__sync_fetch_and_add(&v->hist[w->slot & (STALL_HIST_SLOTS - 1)], -1);
			__sync_fetch_and_add(&v->hist[slot & (STALL_HIST_SLOTS - 1)], 1);
		}
		if (rc != w->rc) {
			__sync_fetch_and_add(&v->outcomes[w->rc & (OUTCOME_SLOTS - 1)], -1);
			__sync_fetch_and_add(&v->outcomes[rc & (OUTCOME_SLOTS - 1)], 1);
		}
		if (obtained && !w->obtained)
			__sync_fetch_and_add(&v->page_obtained, 1);
		if (ns > v->max_ns)
			v->max_ns = ns;
		v->last_ns = now;
	}
	w->last_ns = now;
	w->slot = slot;
	w->rc = rc;
	w->obtained = obtained;
	return w;
}

static __always_inline void on_suitable(int order, int ret)
{
	// CONTINUE changes nothing; compaction_suitable() returns NOT_SUITABLE_ZONE as SKIPPED.
	if (ret == CR(COMPACT_CONTINUE))
		ret = -1;
	else if (ret == CR(COMPACT_NOT_SUITABLE_ZONE))
		ret = CR(COMPACT_SKIPPED);
	update(order, ret, false);
}

static __always_inline void on_defer_reset(int order)
{
	struct compact_window *w = update(order, -1, true);
	if (w && w->obtained)
		close_window(bpf_get_current_pid_tgid());
}

// Reclaim ends the call: its own compaction_suitable events are not in it.
static __always_inline void on_reclaim(void)
{
	close_window(bpf_get_current_pid_tgid());
}

static __always_inline void wakeup_kcompactd(int order)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct stall_key key = {};

	if (!passes_filters(pid_tgid))
		return;
	stat_inc(&compaction_stats, STAT_SEEN);
	key.memcg_id = memcg_id();
	key.tgid = pid_tgid >> 32;
	key.order = order;
	key.kind = STALL_KCOMPACTD_WAKEUP;
	key.ctx = ctx_from_preempt_count(read_preempt_count());
	struct compact_val *v = agg_get(&key, bpf_ktime_get_ns());
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		v->last_ns = bpf_ktime_get_ns();
		v->last_tid = (__u32)pid_tgid;
	}
}

SEC("tp_btf/mm_compaction_try_to_compact_pages")
int BPF_PROG(try_btf, int order, gfp_t gfp_mask, int prio)
{
	open_window(ctx, order, gfp_mask, prio);
	return 0;
}

SEC("tp_btf/mm_compaction_deferred")
int BPF_PROG(deferred_btf, struct zone *zone, int order)
{
	update(order, CR(COMPACT_DEFERRED), false);
	return 0;
}

SEC("tp_btf/mm_compaction_suitable")
int BPF_PROG(suitable_btf, struct zone *zone, int order, int ret)
{
	on_suitable(order, ret);
	return 0;
}

// mm_compaction_end: (cc, zone_start, zone_end, sync, status) from 6.1,
// (zone_start, migrate_pfn, free_pfn, zone_end, sync, status) before. The
// loader keeps the program that matches the kernel's prototype.
SEC("tp_btf/mm_compaction_end")
int BPF_PROG(end_btf, struct compact_control *cc, unsigned long zone_start,
	     unsigned long zone_end, bool sync, int status)
{
	update(ANY_ORDER, status, false);
	return 0;
}

SEC("tp_btf/mm_compaction_end")
int BPF_PROG(end_btf_v5, unsigned long zone_start, unsigned long migrate_pfn,
	     unsigned long free_pfn, unsigned long zone_end, bool sync, int status)
{
	update(ANY_ORDER, status, false);
	return 0;
}

SEC("tp_btf/mm_compaction_defer_reset")
int BPF_PROG(defer_reset_btf, struct zone *zone, int order)
{
	on_defer_reset(order);
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(reclaim_begin_btf)
{
	on_reclaim();
	return 0;
}

SEC("tp_btf/mm_vmscan_node_reclaim_begin")
int BPF_PROG(node_reclaim_begin_btf)
{
	on_reclaim();
	return 0;
}

SEC("tp_btf/mm_compaction_wakeup_kcompactd")
int BPF_PROG(wakeup_kcompactd_btf, int nid, int order, int highest_zoneidx)
{
	wakeup_kcompactd(order);
	return 0;
}

#include "compaction_classic.h"
