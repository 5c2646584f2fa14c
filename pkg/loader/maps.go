package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/memtrace/memtrace/pkg/event"
)

// Stats returns every attached signal's counters, summed over CPUs.
func (s *Session) Stats() (map[event.Signal]event.Stats, error) {
	out := map[event.Signal]event.Stats{}
	for sig, a := range s.families {
		var st event.Stats
		m := a.coll.Maps[a.stats]
		for i, sum := range counters(&st) {
			var perCPU []uint64
			if err := m.Lookup(uint32(i), &perCPU); err != nil {
				return nil, fmt.Errorf("reading %s counter %d: %w", a.stats, i, err)
			}
			for _, v := range perCPU {
				*sum += v
			}
		}
		out[sig] = st
	}
	return out, nil
}

// counters maps each index of enum stat_index (bpf/common.h) to the field
// of st that sums it.
func counters(st *event.Stats) map[allocStatIndex]*uint64 {
	return map[allocStatIndex]*uint64{
		allocStatIndexSTAT_SEEN:     &st.Seen,
		allocStatIndexSTAT_LOST:     &st.Lost,
		allocStatIndexSTAT_SAMPLED:  &st.Sampled,
		allocStatIndexSTAT_MAP_FULL: &st.MapFull,
	}
}

// Attached reports whether a signal is attached.
func (s *Session) Attached(sig event.Signal) bool { return s.families[sig] != nil }

// AllocAggregates returns the exact per-key failure counts, without names.
func (s *Session) AllocAggregates() ([]event.AllocAggregate, error) {
	a := s.families[event.SignalAlloc]
	if a == nil {
		return nil, nil
	}
	var out []event.AllocAggregate
	var k allocAllocKey
	var v allocAllocVal
	it := a.coll.Maps[allocMapAllocAgg].Iterate()
	for it.Next(&k, &v) {
		out = append(out, event.AllocAggregate{
			Task:    event.Task{Pid: k.Pid, Tid: v.LastTid, Comm: commString(v.Comm[:]), CgroupID: v.CgroupId, MemcgID: v.MemcgId},
			Context: contextOf(k.Ctx), Order: k.Order, GFPFlags: event.Hex(k.GfpFlags),
			Migratetype: v.Migratetype, StackID: k.StackId, Count: v.Count,
			FirstSeen: s.wallTime(v.FirstNs), LastSeen: s.wallTime(v.LastNs),
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading alloc_agg: %w", err)
	}
	return out, nil
}

// ExtfragAggregates returns the exact per-key fallback counts.
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
	return out, nil
}

// StackAddrs returns the kernel return addresses of a captured stack,
// innermost first.
func (s *Session) StackAddrs(id int32) ([]uint64, error) {
	a := s.families[event.SignalAlloc]
	if a == nil || id < 0 {
		return nil, nil
	}
	m := a.coll.Maps[allocMapAllocStacks]
	frames := make([]uint64, m.ValueSize()/8)
	if err := m.Lookup(uint32(id), frames); err != nil {
		return nil, fmt.Errorf("reading stack %d: %w", id, err)
	}
	n := 0
	for n < len(frames) && frames[n] != 0 {
		n++
	}
	return frames[:n], nil
}

// ForgetPids deletes the in-kernel aggregates of processes the caller no
// longer shows (watch ages idle processes out), so the maps stay bounded
// on a long run. Their counts were already read.
func (s *Session) ForgetPids(pids []uint32) error {
	if len(pids) == 0 {
		return nil
	}
	drop := make(map[uint32]bool, len(pids))
	for _, p := range pids {
		drop[p] = true
	}
	if a := s.families[event.SignalAlloc]; a != nil {
		if err := deleteWhere[allocAllocKey, allocAllocVal](a.coll.Maps[allocMapAllocAgg], func(k allocAllocKey) bool { return drop[k.Pid] }); err != nil {
			return err
		}
	}
	if a := s.families[event.SignalExtfrag]; a != nil {
		if err := deleteWhere[extfragExtfragKey, extfragExtfragVal](a.coll.Maps[extfragMapExtfragAgg], func(k extfragExtfragKey) bool { return drop[k.Pid] }); err != nil {
			return err
		}
	}
	return nil
}

// deleteWhere deletes the keys of a hash map that match. Keys are
// collected first: deleting while iterating would restart the walk.
func deleteWhere[K, V any](m *ebpf.Map, match func(K) bool) error {
	var k K
	var v V
	var keys []K
	it := m.Iterate()
	for it.Next(&k, &v) {
		if match(k) {
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", m, err)
	}
	for _, key := range keys {
		if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("deleting from %s: %w", m, err)
		}
	}
	return nil
}

// ProgramIDs lists the kernel ids of every program the session loaded, so
// a caller can check they are gone after Close.
func (s *Session) ProgramIDs() ([]ebpf.ProgramID, error) {
	var ids []ebpf.ProgramID
	for _, a := range s.families {
		for _, coll := range append([]*ebpf.Collection{a.coll}, a.companions...) {
			for name, p := range coll.Programs {
				info, err := p.Info()
				if err != nil {
					return nil, fmt.Errorf("reading info of program %s: %w", name, err)
				}
				id, ok := info.ID()
				if !ok {
					return nil, fmt.Errorf("program %s has no id on this kernel", name)
				}
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}
