// SPDX-License-Identifier: GPL-2.0
// Local views of the classic tracepoint records of the vmscan and
// compaction events the stall families read. The records differ between
// kernels (gfp_flags and gfp_mask are 4 bytes on 5.10, 8 from 5.16, and
// the fields after them move), so every field is relocated by CO-RE and
// the GFP fields are read at their size on the running kernel.
#pragma once

#include "common.h"

// READ_GFP reads a gfp field of a classic record at its size.
#define READ_GFP(args, field)                                                            \
	(bpf_core_field_size((args)->field) == 8                                        \
		 ? (__u32)*(__u64 *)((void *)(args) + bpf_core_field_offset((args)->field))   \
		 : *(__u32 *)((void *)(args) + bpf_core_field_offset((args)->field)))

struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template___mt {
	struct trace_entry ent;
	int order;
	unsigned long gfp_flags;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_vmscan_direct_reclaim_end_template___mt {
	struct trace_entry ent;
	unsigned long nr_reclaimed;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_vmscan_node_reclaim_begin___mt {
	struct trace_entry ent;
	int nid;
	int order;
	unsigned long gfp_flags;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_vmscan_throttled___mt {
	struct trace_entry ent;
	int nid;
	int usec_timeout;
	int usec_delayed;
	int reason;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_vmscan_wakeup_kswapd___mt {
	struct trace_entry ent;
	int nid;
	int zid;
	int order;
	unsigned long gfp_flags;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_vmscan_kswapd_wake___mt {
	struct trace_entry ent;
	int nid;
	int zid;
	int order;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_compaction_try_to_compact_pages___mt {
	struct trace_entry ent;
	int order;
	unsigned long gfp_mask;
	int prio;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_compaction_suitable_template___mt {
	struct trace_entry ent;
	int nid;
	int idx;
	int order;
	int ret;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_compaction_defer_template___mt {
	struct trace_entry ent;
	int nid;
	int idx;
	int order;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_compaction_end___mt {
	struct trace_entry ent;
	int status;
} __attribute__((preserve_access_index));

struct trace_event_raw_kcompactd_wake_template___mt {
	struct trace_entry ent;
	int nid;
	int order;
} __attribute__((preserve_access_index));
