// SPDX-License-Identifier: GPL-2.0
// The reclaim family's programs for the classic tracepoints (the fallback
// where tp_btf is refused), on the records of stall_tp.h. Included by
// reclaim.c, whose helpers they call; apart only to keep each file short.
#pragma once

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_begin_tp(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template___mt *args)
{
	begin(args, STALL_DIRECT_RECLAIM, -1, args->order, READ_GFP(args, gfp_flags));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int direct_end_tp(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template___mt *args)
{
	finish(STALL_DIRECT_RECLAIM, args->nr_reclaimed);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_begin_tp(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template___mt *args)
{
	begin(args, STALL_MEMCG_RECLAIM, -1, args->order, READ_GFP(args, gfp_flags));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_end_tp(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template___mt *args)
{
	finish(STALL_MEMCG_RECLAIM, args->nr_reclaimed);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_node_reclaim_begin")
int node_begin_tp(struct trace_event_raw_mm_vmscan_node_reclaim_begin___mt *args)
{
	begin(args, STALL_NODE_RECLAIM, args->nid, args->order, READ_GFP(args, gfp_flags));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_node_reclaim_end")
int node_end_tp(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template___mt *args)
{
	finish(STALL_NODE_RECLAIM, args->nr_reclaimed);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_throttled")
int throttled_tp(struct trace_event_raw_mm_vmscan_throttled___mt *args)
{
	__u32 bits = args->reason;
	__u8 reason = 0xff;

	// The record holds 1 << reason.
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (bits == (1U << i))
			reason = i;
	}
	throttled(args, args->nid, args->usec_delayed, reason);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_wakeup_kswapd")
int wakeup_kswapd_tp(struct trace_event_raw_mm_vmscan_wakeup_kswapd___mt *args)
{
	wakeup_kswapd(args->nid, args->order, READ_GFP(args, gfp_flags));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_kswapd_wake")
int kswapd_wake_tp(struct trace_event_raw_mm_vmscan_kswapd_wake___mt *args)
{
	kswapd_wake(args, args->nid, args->order);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_kswapd_sleep")
int kswapd_sleep_tp(void *args)
{
	finish(STALL_KSWAPD_RUN, 0);
	return 0;
}
