// SPDX-License-Identifier: GPL-2.0
// Burst injector for the benchmarks: runs memtrace's own allocation-failure
// path (record_failure from alloc.c, compiled from the same source) many
// times per BPF_PROG_TEST_RUN through bpf_loop. The loader's
// InjectAllocFailures needs one system call per event, which tops out
// near 2.5*10^5 events/s per core; this reaches the 10^6/s the issue asks
// for. The benchmark loads it with the maps of a running memtrace process,
// so the events land in that process's aggregates and ring buffer.
#include "alloc.c"

struct burst_args {
	void *ctx;
	__u64 gfp;
	__u32 order;
	__u32 spread;
	__s32 migratetype;
};

static long burst_one(__u64 i, void *data)
{
	struct burst_args *b = data;
	__u64 gfp = b->gfp;

	// spread > 1 varies the GFP flags so that many aggregation keys are
	// used (long run: the table grows to a bound, events keep flowing).
	if (b->spread > 1)
		gfp += i % b->spread;
	record_failure(b->ctx, b->order, gfp, b->migratetype);
	return 0;
}

// Context (raw tracepoint test run): n, order, gfp, migratetype, spread.
SEC("raw_tp")
int burst(struct bpf_raw_tracepoint_args *ctx)
{
	struct burst_args b = {
		.ctx = ctx,
		.order = ctx->args[1],
		.gfp = ctx->args[2],
		.migratetype = ctx->args[3],
		.spread = ctx->args[4],
	};
	bpf_loop(ctx->args[0], burst_one, &b, 0);
	return 0;
}

// Calibration, with maps of their own: what one bpf_get_stackid costs
// here (the kernel stack walk memtrace does for every failure), and what
// one bpf_loop iteration costs, to put the failure path's cost in parts.
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} calib_stacks SEC(".maps");

static long stack_one(__u64 i, void *data)
{
	struct burst_args *b = data;
	bpf_get_stackid(b->ctx, &calib_stacks, 0);
	return 0;
}

static long noop_one(__u64 i, void *data)
{
	return 0;
}

SEC("raw_tp")
int calib_stackid(struct bpf_raw_tracepoint_args *ctx)
{
	struct burst_args b = { .ctx = ctx };
	bpf_loop(ctx->args[0], stack_one, &b, 0);
	return 0;
}

SEC("raw_tp")
int calib_loop(struct bpf_raw_tracepoint_args *ctx)
{
	bpf_loop(ctx->args[0], noop_one, 0, 0);
	return 0;
}
