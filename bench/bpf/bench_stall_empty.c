// SPDX-License-Identifier: GPL-2.0
// The stall families' floor: programs that do nothing, one on each
// tracepoint memtrace's reclaim and compaction families attach to (18:
// both families attach to the direct and node reclaim begin events).
// What memtrace costs on a reclaim-heavy workload beyond this is its own
// work; this much any BPF tool pays for being on these hooks.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define EMPTY(event, name) \
	SEC("tp_btf/" #event) int BPF_PROG(name) { return 0; }

// The reclaim family (bpf/reclaim.c).
EMPTY(mm_vmscan_direct_reclaim_begin, empty_direct_begin)
EMPTY(mm_vmscan_direct_reclaim_end, empty_direct_end)
EMPTY(mm_vmscan_memcg_reclaim_begin, empty_memcg_begin)
EMPTY(mm_vmscan_memcg_reclaim_end, empty_memcg_end)
EMPTY(mm_vmscan_node_reclaim_begin, empty_node_begin)
EMPTY(mm_vmscan_node_reclaim_end, empty_node_end)
EMPTY(mm_vmscan_throttled, empty_throttled)
EMPTY(mm_vmscan_wakeup_kswapd, empty_wakeup_kswapd)
EMPTY(mm_vmscan_kswapd_wake, empty_kswapd_wake)
EMPTY(mm_vmscan_kswapd_sleep, empty_kswapd_sleep)

// The compaction family (bpf/compaction.c), reclaim begins included.
EMPTY(mm_compaction_try_to_compact_pages, empty_compact_try)
EMPTY(mm_compaction_deferred, empty_compact_deferred)
EMPTY(mm_compaction_suitable, empty_compact_suitable)
EMPTY(mm_compaction_end, empty_compact_end)
EMPTY(mm_compaction_defer_reset, empty_compact_defer_reset)
EMPTY(mm_compaction_wakeup_kcompactd, empty_wakeup_kcompactd)
EMPTY(mm_vmscan_direct_reclaim_begin, empty_compact_direct_begin)
EMPTY(mm_vmscan_node_reclaim_begin, empty_compact_node_begin)

char LICENSE[] SEC("license") = "GPL";
