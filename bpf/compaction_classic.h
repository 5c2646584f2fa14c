// SPDX-License-Identifier: GPL-2.0
// The compaction family's programs for the classic tracepoints (the fallback
// where tp_btf is refused), on the records of stall_tp.h. Included by
// compaction.c, whose helpers they call; apart only to keep each file short.
#pragma once

SEC("tracepoint/compaction/mm_compaction_try_to_compact_pages")
int try_tp(struct trace_event_raw_mm_compaction_try_to_compact_pages___mt *args)
{
	open_window(args, args->order, READ_GFP(args, gfp_mask), args->prio);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_deferred")
int deferred_tp(struct trace_event_raw_mm_compaction_defer_template___mt *args)
{
	update(args->order, CR(COMPACT_DEFERRED), false);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_suitable")
int suitable_tp(struct trace_event_raw_mm_compaction_suitable_template___mt *args)
{
	on_suitable(args->order, args->ret);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_end")
int end_tp(struct trace_event_raw_mm_compaction_end___mt *args)
{
	update(ANY_ORDER, args->status, false);
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_defer_reset")
int defer_reset_tp(struct trace_event_raw_mm_compaction_defer_template___mt *args)
{
	on_defer_reset(args->order);
	return 0;
}

// Attached to mm_vmscan_direct_reclaim_begin and _node_reclaim_begin.
SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int reclaim_begin_tp(void *args)
{
	on_reclaim();
	return 0;
}

SEC("tracepoint/compaction/mm_compaction_wakeup_kcompactd")
int wakeup_kcompactd_tp(struct trace_event_raw_kcompactd_wake_template___mt *args)
{
	wakeup_kcompactd(args->order);
	return 0;
}
