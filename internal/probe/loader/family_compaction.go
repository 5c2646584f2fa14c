package loader

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/decode"
	"github.com/memtrace/memtrace/internal/event"
)

// The compaction family (bpf/compaction.c): direct compaction calls per
// process with their request, latency and outcome, kcompactd wakeups by
// their waker, and each thread's last compaction call.

func init() {
	register(family{
		signal:     event.SignalCompaction,
		load:       loadCompactionSpec,
		configure:  stallStacks(compactionMapCompactStacks),
		ringbuf:    compactionMapCompactionEvents,
		stats:      compactionMapCompactionStats,
		candidates: func(Config) ([]candidate, error) { return compactionCandidates(), nil },
		decode:     decodeCompaction,
		aggregates: func(s *Session) (any, error) { return s.CompactionAggregates() },
		forget: func(coll *ebpf.Collection, drop func(uint32) bool) error {
			return deleteWhere[compactionStallKey, compactionCompactVal](coll.Maps[compactionMapCompactAgg], func(k compactionStallKey) bool { return drop(k.Tgid) })
		},
		kernelNames: func(kernel *btf.Spec, d *decode.Decoder) {
			d.CompactResults = kernelEnum(kernel, "compact_result", "COMPACT_")
			d.CompactPriorities = kernelEnum(kernel, "compact_priority", "COMPACT_PRIO_")
		},
	})
}

func loadCompactionSpec() (*ebpf.CollectionSpec, error) {
	return loadChecked("compaction", loadCompaction, &compactionSpecs{})
}

const compactionNote = "a call lasts from try_to_compact_pages to its last compaction event; its record is sent when the thread next compacts or reclaims, or gets its page"

// compactionHooks are the family's tracepoints. The reclaim begin events
// end a compaction call: reclaim's own compaction_suitable events must
// not count in it.
var compactionHooks = []struct {
	group, event string
	btf, tp      string
}{
	{"compaction", "mm_compaction_try_to_compact_pages", compactionProgTryBtf, compactionProgTryTp},
	{"compaction", "mm_compaction_deferred", compactionProgDeferredBtf, compactionProgDeferredTp},
	{"compaction", "mm_compaction_suitable", compactionProgSuitableBtf, compactionProgSuitableTp},
	{"compaction", "mm_compaction_end", compactionProgEndBtf, compactionProgEndTp},
	{"compaction", "mm_compaction_defer_reset", compactionProgDeferResetBtf, compactionProgDeferResetTp},
	{"compaction", "mm_compaction_wakeup_kcompactd", compactionProgWakeupKcompactdBtf, compactionProgWakeupKcompactdTp},
	{"vmscan", "mm_vmscan_direct_reclaim_begin", compactionProgReclaimBeginBtf, compactionProgReclaimBeginTp},
	// One classic program serves both reclaim begins.
	{"vmscan", "mm_vmscan_node_reclaim_begin", compactionProgNodeReclaimBeginBtf, compactionProgReclaimBeginTp},
}

func compactionCandidates() []candidate {
	btfs := tpHooks{kind: "tp_btf", name: "tp_btf/mm_compaction_*", note: compactionNote, choose: chooseCompactionEnd}
	tps := tpHooks{kind: "tracepoint", name: "tracepoint/compaction/mm_compaction_*", note: compactionNote}
	for _, h := range compactionHooks {
		btfs.hooks = append(btfs.hooks, tpHook{prog: h.btf, group: h.group, event: h.event})
		tps.hooks = append(tps.hooks, tpHook{prog: h.tp, group: h.group, event: h.event})
	}
	btfs.hooks = append(btfs.hooks, tpHook{prog: compactionProgEndBtfV5, group: "compaction", event: "mm_compaction_end"})
	return []candidate{btfs.candidate(), tps.candidate()}
}

// chooseCompactionEnd keeps the tp_btf program for mm_compaction_end that
// matches the kernel's prototype: 5 arguments (cc first) from 6.1, 6
// (pfns) before. A program reading past the prototype is refused.
func chooseCompactionEnd(spec *ebpf.CollectionSpec, kernel *btf.Spec) error {
	switch n := tracepointParams(kernel, "mm_compaction_end"); n {
	case 5:
		delete(spec.Programs, compactionProgEndBtfV5)
	case 6:
		delete(spec.Programs, compactionProgEndBtf)
	case -1:
		return errors.New("mm_compaction_end is not in kernel BTF (CONFIG_COMPACTION off?)")
	default:
		return fmt.Errorf("mm_compaction_end has %d arguments on this kernel, want 5 or 6", n)
	}
	return nil
}

func decodeCompaction(s *Session, raw []byte) (event.Event, error) {
	var r compactionCompactionEvent
	if err := decodeStallRecord(raw, &r, binary.Size(r.Stack)); err != nil {
		return event.Event{}, err
	}
	ev := s.header(event.KindCompactionStall, eventHdr(r.Hdr))
	ev.Compaction = &event.CompactionStall{
		Order: r.Order, GFPFlags: event.Hex(r.Gfp), PriorityValue: int32(r.Prio),
		OutcomeValue: int32(r.Outcome), PageObtained: r.Obtained != 0,
		Start: s.wallTime(r.StartNs), StartNs: r.StartNs, DurationNs: r.DurationNs, Count: r.Count,
		StallStack: event.StallStack{StackAddrs: stallStackAddrs(r.Stack.Ips[:], r.Stack.Len)},
	}
	return ev, nil
}

// CompactionAggregates returns the exact per-key compaction totals and
// kcompactd wakeups, named. Calls still running count with what they
// have so far.
func (s *Session) CompactionAggregates() ([]event.CompactionAggregate, error) {
	a := s.families[event.SignalCompaction]
	if a == nil {
		return nil, nil
	}
	var out []event.CompactionAggregate
	var k compactionStallKey
	var v compactionCompactVal
	it := a.coll.Maps[compactionMapCompactAgg].Iterate()
	for it.Next(&k, &v) {
		row := event.CompactionAggregate{
			Task:    event.Task{Pid: k.Tgid, Tid: v.LastTid, Comm: commString(v.Comm[:]), CgroupID: v.CgroupId, MemcgID: k.MemcgId},
			Context: contextOf(k.Ctx), Kind: stallKindOf(k.Kind), Order: k.Order,
			StallTotals:  event.StallTotals{Count: v.Count},
			PageObtained: v.PageObtained,
			FirstSeen:    s.wallTime(v.FirstNs), LastSeen: s.wallTime(v.LastNs),
		}
		if row.Kind == event.StallCompaction {
			row.GFPFlags, row.PriorityValue = event.Hex(k.Gfp), int32(k.Detail)
			row.TotalNs, row.MaxNs, row.Histogram = v.TotalNs, v.MaxNs, histogram(v.Hist[:])
			for value, n := range v.Outcomes {
				if n != 0 {
					row.Outcomes = append(row.Outcomes, event.OutcomeCount{Value: int32(value), Count: n})
				}
			}
		}
		out = append(out, row)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading compact_agg: %w", err)
	}
	s.names.mu.Lock()
	defer s.names.mu.Unlock()
	for i := range out {
		s.names.dec.CompactionAggregate(&out[i])
	}
	return out, nil
}

// LastCompaction returns the most recent direct compaction call of thread
// tid, false if memtrace saw none (or the thread's slot was reused: the
// map keeps the 8192 most recent threads).
func (s *Session) LastCompaction(tid uint32) (event.LastCompaction, bool, error) {
	a := s.families[event.SignalCompaction]
	if a == nil {
		return event.LastCompaction{}, false, nil
	}
	var w compactionCompactWindow
	if err := a.coll.Maps[compactionMapCompactWindows].Lookup(tid, &w); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return event.LastCompaction{}, false, nil
		}
		return event.LastCompaction{}, false, fmt.Errorf("reading compact_windows: %w", err)
	}
	l := lastCompaction(s, tid, w)
	s.names.mu.Lock()
	defer s.names.mu.Unlock()
	s.names.dec.LastCompaction(&l)
	return l, true, nil
}

func lastCompaction(s *Session, tid uint32, w compactionCompactWindow) event.LastCompaction {
	return event.LastCompaction{
		Pid: w.Key.Tgid, Tid: tid, Order: w.Key.Order, GFPFlags: event.Hex(w.Key.Gfp),
		PriorityValue: int32(w.Key.Detail), OutcomeValue: int32(w.Rc),
		PageObtained: w.Obtained != 0, Open: w.Open != 0,
		Start: s.wallTime(w.StartNs), End: s.wallTime(w.LastNs), StartNs: w.StartNs, EndNs: w.LastNs,
	}
}
