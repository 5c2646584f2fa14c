package loader

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/memtrace/memtrace/internal/event"
)

// The extfrag family (bpf/extfrag.c): allocations that fell back to
// another migratetype's pageblock (mm_page_alloc_extfrag).

func init() {
	register(family{
		signal:     event.SignalExtfrag,
		load:       loadExtfragSpec,
		ringbuf:    extfragMapExtfragEvents,
		stats:      extfragMapExtfragStats,
		candidates: func(Config) ([]candidate, error) { return extfragCandidates(), nil },
		decode:     decodeExtfrag,
		aggregates: func(s *Session) (any, error) { return s.ExtfragAggregates() },
		forget: func(coll *ebpf.Collection, drop func(uint32) bool) error {
			return deleteWhere[extfragExtfragKey, extfragExtfragVal](coll.Maps[extfragMapExtfragAgg], func(k extfragExtfragKey) bool { return drop(k.Pid) })
		},
	})
}

func loadExtfragSpec() (*ebpf.CollectionSpec, error) {
	return loadChecked("extfrag", loadExtfrag, &extfragSpecs{})
}

func extfragCandidates() []candidate {
	return []candidate{
		{
			name: "tracepoint/kmem/mm_page_alloc_extfrag", programs: []string{extfragProgExtfragTp}, needsTracefs: true,
			attach: tracepoints(map[string][2]string{extfragProgExtfragTp: {"kmem", "mm_page_alloc_extfrag"}}),
		},
		{
			name: "tp_btf/mm_page_alloc_extfrag", programs: []string{extfragProgExtfragBtf},
			note:   "change_ownership is not known on tp_btf",
			attach: tpBTF(extfragProgExtfragBtf),
		},
	}
}

func decodeExtfrag(s *Session, raw []byte) (event.Event, error) {
	var r extfragExtfragEvent
	if err := decodeRecord(raw, &r); err != nil {
		return event.Event{}, err
	}
	ev := s.header(event.KindExtfrag, eventHdr(r.Hdr))
	var co *bool
	if r.ChangeOwnership >= 0 {
		b := r.ChangeOwnership > 0
		co = &b
	}
	ev.Extfrag = &event.Extfrag{
		PFN: r.Pfn, AllocOrder: r.AllocOrder, FallbackOrder: r.FallbackOrder,
		AllocMigratetype: r.AllocMigratetype, FallbackMigratetype: r.FallbackMigratetype,
		ChangeOwnership: co, Fragmenting: r.Fragmenting != 0, Count: r.Count,
	}
	return ev, nil
}

// ExtfragAggregates returns the exact per-key fallback counts, named.
func (s *Session) ExtfragAggregates() ([]event.ExtfragAggregate, error) {
	a := s.families[event.SignalExtfrag]
	if a == nil {
		return nil, nil
	}
	var out []event.ExtfragAggregate
	var k extfragExtfragKey
	var v extfragExtfragVal
	it := a.coll.Maps[extfragMapExtfragAgg].Iterate()
	for it.Next(&k, &v) {
		out = append(out, event.ExtfragAggregate{
			Task:       event.Task{Pid: k.Pid, Comm: commString(v.Comm[:]), CgroupID: v.CgroupId, MemcgID: v.MemcgId},
			AllocOrder: k.AllocOrder, FallbackOrder: k.FallbackOrder,
			AllocMigratetype: k.AllocMigratetype, FallbackMigratetype: k.FallbackMigratetype,
			Count: v.Count, Fragmenting: v.Fragmenting, ChangeOwnership: v.ChangeOwnership,
			FirstSeen: s.wallTime(v.FirstNs), LastSeen: s.wallTime(v.LastNs),
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading extfrag_agg: %w", err)
	}
	s.names.extfragAggregates(out)
	return out, nil
}
