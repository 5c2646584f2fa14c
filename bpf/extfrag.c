// SPDX-License-Identifier: GPL-2.0
// External fragmentation: kmem:mm_page_alloc_extfrag fires when an
// allocation falls back to another migratetype's free list. A fallback of
// less than a whole pageblock ("fragmenting") mixes migratetypes inside a
// pageblock, which is what later makes high-order atomic requests fail.
#include "common.h"

struct extfrag_event {
	struct event_hdr hdr;
	__u64 pfn;              // 0: not known on this hook
	__s32 alloc_order;
	__s32 fallback_order;
	__s32 alloc_migratetype;
	__s32 fallback_migratetype;
	__s32 change_ownership; // -1: not known on this hook
	__u8 fragmenting;
	__u8 _pad[3];
	__u64 count;            // value of the aggregate after this event
};

struct extfrag_key {
	__u32 pid;
	__s32 alloc_order;
	__s32 fallback_order;
	__s32 alloc_migratetype;
	__s32 fallback_migratetype;
};

struct extfrag_val {
	__u64 count;
	__u64 fragmenting;
	__u64 change_ownership;
	__u64 first_ns;
	__u64 last_ns;
	__u64 cgroup_id;
	__u64 memcg_id;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} extfrag_events SEC(".maps");

DEFINE_STATS(extfrag_stats);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct extfrag_key);
	__type(value, struct extfrag_val);
} extfrag_agg SEC(".maps");

const struct extfrag_event *unused_extfrag_event __attribute__((unused));
const struct extfrag_key *unused_extfrag_key __attribute__((unused));

static __always_inline int record_extfrag(__u64 pfn, int alloc_order, int fallback_order,
					  int alloc_mt, int fallback_mt, int change_ownership,
					  __u8 exec_ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct extfrag_key key = {};
	struct extfrag_val *val;
	__u8 fragmenting = fallback_order < CFG.pageblock_order;
	__u64 now, count = 1;

	if (!passes_filters(pid_tgid))
		return 0;
	stat_inc(&extfrag_stats, STAT_SEEN);

	now = bpf_ktime_get_ns();
	key.pid = pid_tgid >> 32;
	key.alloc_order = alloc_order;
	key.fallback_order = fallback_order;
	key.alloc_migratetype = alloc_mt;
	key.fallback_migratetype = fallback_mt;

	val = bpf_map_lookup_elem(&extfrag_agg, &key);
	if (!val) {
		struct extfrag_val init = {};
		init.first_ns = now;
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		init.cgroup_id = bpf_get_current_cgroup_id();
		init.memcg_id = memcg_id();
		if (bpf_map_update_elem(&extfrag_agg, &key, &init, BPF_NOEXIST) == -7 /* E2BIG */)
			stat_inc(&extfrag_stats, STAT_MAP_FULL);
		val = bpf_map_lookup_elem(&extfrag_agg, &key);
	}
	if (val) {
		count = count_one(&val->count);
		if (fragmenting)
			__sync_fetch_and_add(&val->fragmenting, 1);
		if (change_ownership > 0)
			__sync_fetch_and_add(&val->change_ownership, 1);
		val->last_ns = now;
	}

	if (!should_send(count)) {
		stat_inc(&extfrag_stats, STAT_SAMPLED);
		return 0;
	}
	struct extfrag_event *e = bpf_ringbuf_reserve(&extfrag_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&extfrag_stats, STAT_LOST);
		return 0;
	}
	fill_hdr(&e->hdr, EVENT_EXTFRAG, exec_ctx, pid_tgid);
	e->pfn = pfn;
	e->alloc_order = alloc_order;
	e->fallback_order = fallback_order;
	e->alloc_migratetype = alloc_mt;
	e->fallback_migratetype = fallback_mt;
	e->change_ownership = change_ownership;
	e->fragmenting = fragmenting;
	e->count = count;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

struct trace_event_raw_mm_page_alloc_extfrag___mt {
	struct trace_entry ent;
	unsigned long pfn;
	int alloc_order;
	int fallback_order;
	int alloc_migratetype;
	int fallback_migratetype;
	int change_ownership;
} __attribute__((preserve_access_index));

// Preferred: the classic tracepoint, because its record carries
// change_ownership, which the kernel computes from the pageblock at the
// time of the event. This hook is not hot: it fires only on fallbacks.
SEC("tracepoint/kmem/mm_page_alloc_extfrag")
int extfrag_tp(struct trace_event_raw_mm_page_alloc_extfrag___mt *args)
{
	return record_extfrag(args->pfn, args->alloc_order, args->fallback_order,
			      args->alloc_migratetype, args->fallback_migratetype,
			      args->change_ownership, ctx_from_preempt_count(read_preempt_count()));
}

// Fallback when tracefs is unavailable: the BTF-typed tracepoint has the
// same orders and migratetypes but not change_ownership.
SEC("tp_btf/mm_page_alloc_extfrag")
int BPF_PROG(extfrag_btf, struct page *page, int alloc_order, int fallback_order,
	     int alloc_migratetype, int fallback_migratetype)
{
	return record_extfrag(0, alloc_order, fallback_order, alloc_migratetype,
			      fallback_migratetype, -1, ctx_from_preempt_count(read_preempt_count()));
}
