package loader

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/decode"
	"github.com/memtrace/memtrace/internal/event"
)

// The reclaim family (bpf/reclaim.c): direct, memory-cgroup and node
// reclaim stalls, reclaim throttling, kswapd wakeups (by their waker) and
// kswapd runs, aggregated per process and memory cgroup in the kernel.

func init() {
	register(family{
		signal:     event.SignalReclaim,
		load:       loadReclaimSpec,
		configure:  stallStacks(reclaimMapReclaimStacks),
		ringbuf:    reclaimMapReclaimEvents,
		stats:      reclaimMapReclaimStats,
		candidates: func(Config) ([]candidate, error) { return reclaimCandidates(), nil },
		decode:     decodeReclaim,
		aggregates: func(s *Session) (any, error) { return s.ReclaimAggregates() },
		forget: func(coll *ebpf.Collection, drop func(uint32) bool) error {
			return deleteWhere[reclaimStallKey, reclaimReclaimVal](coll.Maps[reclaimMapReclaimAgg], func(k reclaimStallKey) bool { return drop(k.Tgid) })
		},
		kernelNames: func(kernel *btf.Spec, d *decode.Decoder) {
			d.ThrottleReasons = kernelEnum(kernel, "vmscan_throttle_state", "VMSCAN_THROTTLE_")
		},
	})
}

func loadReclaimSpec() (*ebpf.CollectionSpec, error) {
	return loadChecked("reclaim", loadReclaim, &reclaimSpecs{})
}

const reclaimNote = "memcg reclaim reports order 0 and a rewritten GFP mask, and is counted for the reclaiming task's memory cgroup"

// reclaimHooks are the family's tracepoints, with the programs for tp_btf
// and for the classic tracepoint.
var reclaimHooks = []struct {
	event    string
	btf, tp  string
	optional bool
}{
	{"mm_vmscan_direct_reclaim_begin", reclaimProgDirectBeginBtf, reclaimProgDirectBeginTp, false},
	{"mm_vmscan_direct_reclaim_end", reclaimProgDirectEndBtf, reclaimProgDirectEndTp, false},
	// CONFIG_MEMCG.
	{"mm_vmscan_memcg_reclaim_begin", reclaimProgMemcgBeginBtf, reclaimProgMemcgBeginTp, true},
	{"mm_vmscan_memcg_reclaim_end", reclaimProgMemcgEndBtf, reclaimProgMemcgEndTp, true},
	{"mm_vmscan_node_reclaim_begin", reclaimProgNodeBeginBtf, reclaimProgNodeBeginTp, true},
	{"mm_vmscan_node_reclaim_end", reclaimProgNodeEndBtf, reclaimProgNodeEndTp, true},
	// 5.16 and later.
	{"mm_vmscan_throttled", reclaimProgThrottledBtf, reclaimProgThrottledTp, true},
	{"mm_vmscan_wakeup_kswapd", reclaimProgWakeupKswapdBtf, reclaimProgWakeupKswapdTp, false},
	{"mm_vmscan_kswapd_wake", reclaimProgKswapdWakeBtf, reclaimProgKswapdWakeTp, false},
	{"mm_vmscan_kswapd_sleep", reclaimProgKswapdSleepBtf, reclaimProgKswapdSleepTp, false},
}

// reclaimCandidates: tp_btf first (no tracefs, the cheapest dispatch),
// then the classic tracepoints.
func reclaimCandidates() []candidate {
	btfs := tpHooks{kind: "tp_btf", name: "tp_btf/mm_vmscan_*", note: reclaimNote}
	tps := tpHooks{kind: "tracepoint", name: "tracepoint/vmscan/mm_vmscan_*", note: reclaimNote}
	for _, h := range reclaimHooks {
		btfs.hooks = append(btfs.hooks, tpHook{prog: h.btf, group: "vmscan", event: h.event, optional: h.optional})
		tps.hooks = append(tps.hooks, tpHook{prog: h.tp, group: "vmscan", event: h.event, optional: h.optional})
	}
	return []candidate{btfs.candidate(), tps.candidate()}
}

func decodeReclaim(s *Session, raw []byte) (event.Event, error) {
	var r reclaimReclaimEvent
	if err := decodeStallRecord(raw, &r, binary.Size(r.Stack)); err != nil {
		return event.Event{}, err
	}
	ev := s.header(event.KindReclaimStall, eventHdr(r.Hdr))
	ev.Reclaim = &event.ReclaimStall{
		Kind: stallKindOf(r.Kind), Order: r.Order, GFPFlags: event.Hex(r.Gfp), Node: r.Nid,
		DurationNs: r.DurationNs, Reclaimed: r.Reclaimed, ThrottledNs: r.ThrottledNs,
		Passes: r.Passes, ThrottleReasonValue: r.Detail, Count: r.Count,
		StallStack: event.StallStack{StackAddrs: stallStackAddrs(r.Stack.Ips[:], r.Stack.Len)},
	}
	return ev, nil
}

// ReclaimAggregates returns the exact per-key reclaim stall totals, named.
func (s *Session) ReclaimAggregates() ([]event.ReclaimAggregate, error) {
	a := s.families[event.SignalReclaim]
	if a == nil {
		return nil, nil
	}
	var out []event.ReclaimAggregate
	var k reclaimStallKey
	var v reclaimReclaimVal
	it := a.coll.Maps[reclaimMapReclaimAgg].Iterate()
	for it.Next(&k, &v) {
		row := event.ReclaimAggregate{
			Task:    event.Task{Pid: k.Tgid, Tid: v.LastTid, Comm: commString(v.Comm[:]), CgroupID: v.CgroupId, MemcgID: k.MemcgId},
			Context: contextOf(k.Ctx), Kind: stallKindOf(k.Kind), Order: k.Order, GFPFlags: event.Hex(k.Gfp),
			StallTotals: event.StallTotals{Count: v.Count, TotalNs: v.TotalNs, MaxNs: v.MaxNs, Histogram: histogram(v.Hist[:])},
			Reclaimed:   v.Reclaimed, ThrottledNs: v.ThrottledNs, Passes: v.Passes,
			FirstSeen: s.wallTime(v.FirstNs), LastSeen: s.wallTime(v.LastNs),
		}
		if row.Kind == event.StallThrottled {
			row.ThrottleReasonValue = k.Detail
		}
		out = append(out, row)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading reclaim_agg: %w", err)
	}
	s.names.mu.Lock()
	defer s.names.mu.Unlock()
	for i := range out {
		s.names.dec.ReclaimAggregate(&out[i])
	}
	return out, nil
}
