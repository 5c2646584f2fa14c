// SPDX-License-Identifier: GPL-2.0
// Page-allocation failures: every call of the page allocator that returns
// no page, and the atomic demand: pages taken by requests that cannot
// sleep. kmem:mm_page_alloc fires on every page allocation, so each
// program tests "cannot sleep" and "no page" before anything else.
#include "common.h"

struct alloc_event {
	struct event_hdr hdr;
	__u64 gfp_flags;
	__u32 order;
	__s32 migratetype; // -1: not known on this hook
	__s32 stack_id;    // kernel stack in alloc_stacks, <0: not captured
	__s32 preempt_count; // -1: not read on this hook
	__u64 count;       // value of the aggregate after this event
};

// The aggregation key has no stack: walking the kernel stack
// (bpf_get_stackid) costs more than everything else a failure does
// together (~2 µs of ~2.6 on a 2-vCPU VM), and during a failure storm
// every failure pays it. Counts per key stay exact; the stack is walked
// for a key's first failure (kept in the value) and for the events sent.
struct alloc_key {
	__u32 pid;
	__u32 order;
	__u64 gfp_flags;
	__u8 ctx;
	__u8 _pad[7];
};

struct alloc_val {
	__u64 count;
	__u64 first_ns;
	__u64 last_ns;
	__u64 cgroup_id;
	__u64 memcg_id;
	__u32 last_tid;
	__s32 migratetype;
	__s32 stack_id; // kernel stack of the key's first failure, <0: none
	__u32 _pad;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} alloc_events SEC(".maps");

DEFINE_STATS(alloc_stats);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct alloc_key);
	__type(value, struct alloc_val);
} alloc_agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} alloc_stacks SEC(".maps");

// A call of warn_alloc(): the failures the kernel writes to its log.
struct warn_event {
	struct event_hdr hdr;
	__u64 gfp_flags;
	__u64 arg;      // the first vararg: order (page allocation), size (vmalloc)
	__s32 stack_id;
	__u8 what;      // enum warn_what
	__u8 nowarn;    // __GFP_NOWARN set: the kernel returns without logging
	__u8 _pad[2];
	char fmt[48];   // the start of the message format
};

enum warn_what {
	WARN_OTHER = 0,
	WARN_PAGE_ALLOC = 1, // "page allocation failure: order:%u"
	WARN_VMALLOC = 2,    // "vmalloc error: size %lu, ..."
};

// Atomic demand: pages allocated by requests that cannot sleep (no
// __GFP_DIRECT_RECLAIM), successes and failures, per CPU. They live on the
// free memory above the min watermark, which min_free_kbytes sizes; only
// those with __GFP_HIGH (GFP_ATOMIC) may go below min, so the two are kept
// apart. Go reads the sums every 100 ms and keeps the peak.
struct atomic_demand {
	__u64 pages[2]; // [0]: without __GFP_HIGH (GFP_NOWAIT, THP), [1]: with
	__u64 hits;     // atomic allocations, for sampling
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct atomic_demand);
} atomic_pcpu SEC(".maps");

// Who makes the atomic demand, from a sample of it: in softirq and hardirq
// context the task is only the one interrupted, so the key has the context.
struct atomic_top_key {
	__u32 pid;
	__u8 ctx;
	__u8 high;
	__u8 _pad[2];
};

struct atomic_top_val {
	__u64 samples;
	__u64 pages; // pages of the sampled allocations
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct atomic_top_key);
	__type(value, struct atomic_top_val);
} atomic_top SEC(".maps");

// Force the event types into BTF so bpf2go generates Go types for them.
const struct alloc_event *unused_alloc_event __attribute__((unused));
const struct warn_event *unused_warn_event __attribute__((unused));
const enum warn_what *unused_warn_what __attribute__((unused));
const struct alloc_key *unused_alloc_key __attribute__((unused));
const struct atomic_demand *unused_atomic_demand __attribute__((unused));
const struct atomic_top_key *unused_atomic_top_key __attribute__((unused));
const struct atomic_top_val *unused_atomic_top_val __attribute__((unused));

// sample_atomic attributes one sampled atomic allocation; it runs on one
// atomic allocation in CFG.atomic_sample_every, never on the common path.
static __attribute__((noinline)) int sample_atomic(__u32 order, __u32 high)
{
	struct atomic_top_key key = {};
	struct atomic_top_val *val;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	key.ctx = ctx_from_preempt_count(read_preempt_count());
	key.high = high;
	val = bpf_map_lookup_elem(&atomic_top, &key);
	if (!val) {
		struct atomic_top_val init = {};
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		bpf_map_update_elem(&atomic_top, &key, &init, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&atomic_top, &key);
		if (!val)
			return 0;
	}
	__sync_fetch_and_add(&val->samples, 1);
	__sync_fetch_and_add(&val->pages, 1ULL << (order & 63));
	return 0;
}

// count_atomic adds one atomic allocation to this CPU's demand. Callers
// test "cannot sleep" first: the sleeping allocation, by far the most
// common, pays only that one test. The load-time filters apply as to
// every signal (with none set, the verifier removes their test); a plain
// add suffices on a per-CPU value, as the program does not run nested on
// one CPU on kernels that guard tracing programs against recursion.
static __always_inline void count_atomic(__u32 order, __u64 gfp)
{
	__u32 key = 0;
	struct atomic_demand *d;

	if ((CFG.filter_tgid || CFG.filter_comm_len || CFG.filter_cgroup) &&
	    !passes_filters(bpf_get_current_pid_tgid()))
		return;
	d = bpf_map_lookup_elem(&atomic_pcpu, &key);
	if (!d)
		return;
	__u32 high = (gfp & CFG.gfp_high) != 0;
	d->pages[high & 1] += 1ULL << (order & 63);
	if (CFG.atomic_sample_every && (++d->hits & (CFG.atomic_sample_every - 1)) == 0)
		sample_atomic(order, high);
}

#ifndef barrier
#define barrier() asm volatile("" ::: "memory")
#endif

// cannot_sleep is the one test every allocation pays for atomic demand.
// With counting off the verifier removes it (CFG is constant).
#define cannot_sleep(gfp) (CFG.count_atomic && !((gfp) & CFG.gfp_direct_reclaim))

// record_failure counts one allocation that returned no page, exactly,
// per process, order, flags and context, and sends it as an event while
// sampling says so. It is a function of its own (noinline), so the
// program on mm_page_alloc, which runs on every allocation, keeps only
// the tests before it. The stack is walked only for a new key and for
// an event that has its ring-buffer slot: a storm of one failure costs a
// hash look-up, not a stack walk. The walk starts at the helper's caller,
// so its first frame is skipped: clang may copy the call (it does), and
// two call sites in this function would give one kernel path two ids.
static __attribute__((noinline)) int record_failure(void *ctx, __u32 order, __u64 gfp, __s32 migratetype)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct alloc_key key = {};
	struct alloc_val *val;
	struct alloc_event *e;
	__u64 now, count = 1;
	__s32 stack_id;

	if (!passes_filters(pid_tgid))
		return 0;
	stat_inc(&alloc_stats, STAT_SEEN);

	int pc = read_preempt_count();
	__u8 exec_ctx = ctx_from_preempt_count(pc);
	now = bpf_ktime_get_ns();
	key.pid = pid_tgid >> 32;
	key.order = order;
	key.gfp_flags = gfp;
	key.ctx = exec_ctx;

	val = bpf_map_lookup_elem(&alloc_agg, &key);
	if (val) {
		count = count_one(&val->count);
		val->last_ns = now;
		val->last_tid = (__u32)pid_tgid;
		if (!should_send(count)) {
			stat_inc(&alloc_stats, STAT_SAMPLED);
			return 0;
		}
	}
	// Sent (a new key's first failure always is), or a new key to create:
	// either needs the stack.
	e = bpf_ringbuf_reserve(&alloc_events, sizeof(*e), 0);
	if (!e && val) {
		stat_inc(&alloc_stats, STAT_LOST);
		return 0;
	}
	stack_id = bpf_get_stackid(ctx, &alloc_stacks, 1 /* skip this function's frame */);
	if (!val) {
		struct alloc_val init = {};
		init.count = 1;
		init.first_ns = now;
		init.last_ns = now;
		init.last_tid = (__u32)pid_tgid;
		init.migratetype = migratetype;
		init.stack_id = stack_id;
		bpf_get_current_comm(init.comm, sizeof(init.comm));
		init.cgroup_id = bpf_get_current_cgroup_id();
		init.memcg_id = memcg_id();
		long err = bpf_map_update_elem(&alloc_agg, &key, &init, BPF_NOEXIST);
		if (err == -17 /* EEXIST: another CPU created it meanwhile */) {
			val = bpf_map_lookup_elem(&alloc_agg, &key);
			if (val) {
				count = count_one(&val->count);
				val->last_ns = now;
				val->last_tid = (__u32)pid_tgid;
			}
		} else if (err == -7 /* E2BIG: full */) {
			stat_inc(&alloc_stats, STAT_MAP_FULL);
		}
	}
	if (!e) {
		stat_inc(&alloc_stats, STAT_LOST);
		return 0;
	}
	fill_hdr(&e->hdr, EVENT_ALLOC_FAIL, exec_ctx, pid_tgid);
	e->gfp_flags = gfp;
	e->order = order;
	e->migratetype = migratetype;
	e->stack_id = stack_id;
	e->preempt_count = pc;
	e->count = count;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// Preferred: BTF-typed tracepoint, the cheapest hook on mm_page_alloc.
// Arguments are trace_mm_page_alloc(page, order, gfp_flags, migratetype).
SEC("tp_btf/mm_page_alloc")
int alloc_fail_btf(__u64 *ctx)
{
	// Arguments are read as they are needed rather than all at entry
	// (BPF_PROG), so a successful sleeping allocation loads two. The
	// 32-bit gfp_t arrives zero-extended in its 64-bit slot: tested as it
	// is, it needs no extension on the hot path.
	__u64 gfp_flags = ctx[2];
	if (cannot_sleep(gfp_flags))
		count_atomic((unsigned int)ctx[1], gfp_flags);
	// Keep clang from loading the failure path's arguments before the
	// tests: a successful allocation needs only gfp_flags and page.
	barrier();
	if (ctx[0])
		return 0;
	return record_failure(ctx, (unsigned int)ctx[1], (gfp_t)gfp_flags, (int)ctx[3]);
}

// Local view of the classic record: gfp_flags is 4 bytes up to 5.15 and
// 8 bytes from 5.19, so it is read through CO-RE below.
struct trace_event_raw_mm_page_alloc___mt {
	struct trace_entry ent;
	unsigned long pfn;
	unsigned int order;
	unsigned long gfp_flags;
	int migratetype;
} __attribute__((preserve_access_index));

// Fallback: the classic tracepoint, on kernels without tp_btf (or BTF).
SEC("tracepoint/kmem/mm_page_alloc")
int alloc_fail_tp(struct trace_event_raw_mm_page_alloc___mt *args)
{
	__u64 gfp;
	if (bpf_core_field_size(args->gfp_flags) == 8)
		gfp = *(__u64 *)((void *)args + bpf_core_field_offset(args->gfp_flags));
	else
		gfp = *(__u32 *)((void *)args + bpf_core_field_offset(args->gfp_flags));

	if (cannot_sleep(gfp))
		count_atomic(args->order, gfp);
	barrier();
	if (args->pfn != (unsigned long)-1)
		return 0;

	// common_flags would tell the context, but tracepoint programs may not
	// read the first 8 bytes of the record: record_failure reads
	// preempt_count.
	return record_failure(args, args->order, gfp, args->migratetype);
}

// Optional: fexit on the allocator itself, where the kernel permits
// fentry/fexit. The attach target (__alloc_frozen_pages_noprof,
// __alloc_pages_noprof, __alloc_pages, __alloc_pages_nodemask) is chosen in
// Go; all take (gfp, order, preferred_nid, nodemask) and return the page.
// The migratetype is not an argument there.
SEC("fexit/__alloc_pages")
int BPF_PROG(alloc_fail_fexit, gfp_t gfp, unsigned int order, int preferred_nid,
	     nodemask_t *nodemask, struct page *ret)
{
	// The allocator's own argument: before current_gfp_context() applies
	// a task's scoped NOFS/NOIO, which never adds __GFP_DIRECT_RECLAIM.
	if (cannot_sleep(gfp))
		count_atomic(order, gfp);
	barrier();
	if (ret)
		return 0;
	return record_failure(ctx, order, gfp, -1);
}

// Companion hook where kprobes exist: warn_alloc(gfp, nodemask, fmt, ...)
// is what prints "page allocation failure" and "vmalloc error" to the
// kernel log. It is variadic, so fentry cannot attach to it; on x86-64 and
// arm64 the first variadic argument is still the fourth register argument.
SEC("kprobe/warn_alloc")
int BPF_KPROBE(warn_alloc_kprobe, gfp_t gfp, void *nodemask, const char *fmt)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!passes_filters(pid_tgid))
		return 0;

	struct warn_event *e = bpf_ringbuf_reserve(&alloc_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&alloc_stats, STAT_LOST);
		return 0;
	}
	fill_hdr(&e->hdr, EVENT_WARN_ALLOC, ctx_from_preempt_count(read_preempt_count()), pid_tgid);
	e->gfp_flags = gfp;
	e->arg = PT_REGS_PARM4(ctx);
	e->stack_id = bpf_get_stackid(ctx, &alloc_stacks, 0);
	e->nowarn = CFG.gfp_nowarn && (gfp & CFG.gfp_nowarn);
	__builtin_memset(e->_pad, 0, sizeof(e->_pad));
	__builtin_memset(e->fmt, 0, sizeof(e->fmt));
	bpf_probe_read_kernel_str(e->fmt, sizeof(e->fmt), fmt);
	e->what = WARN_OTHER;
	if (e->fmt[0] == 'p' && e->fmt[1] == 'a' && e->fmt[2] == 'g' && e->fmt[3] == 'e')
		e->what = WARN_PAGE_ALLOC;
	else if (e->fmt[0] == 'v' && e->fmt[1] == 'm' && e->fmt[2] == 'a' && e->fmt[3] == 'l')
		e->what = WARN_VMALLOC;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
