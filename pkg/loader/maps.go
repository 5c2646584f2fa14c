package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/memtrace/memtrace/pkg/event"
)

// Indexes of enum stat_index in bpf/common.h.
const (
	statSeen = iota
	statLost
	statSampled
	statMapFull
	statMax
)

// Stats returns every attached signal's counters, summed over CPUs.
func (s *Session) Stats() (map[event.Signal]event.Stats, error) {
	out := map[event.Signal]event.Stats{}
	for sig, a := range s.families {
		var st event.Stats
		dst := []*uint64{&st.Seen, &st.Lost, &st.Sampled, &st.MapFull}
		m := a.coll.Maps[a.stats]
		for i := uint32(0); i < statMax; i++ {
			var perCPU []uint64
			if err := m.Lookup(i, &perCPU); err != nil {
				return nil, fmt.Errorf("reading %s counter %d: %w", a.stats, i, err)
			}
			for _, v := range perCPU {
				*dst[i] += v
			}
		}
		out[sig] = st
	}
	return out, nil
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
	it := a.coll.Maps["alloc_agg"].Iterate()
	for it.Next(&k, &v) {
		out = append(out, event.AllocAggregate{
			Task:    event.Task{Pid: k.Pid, Tid: v.LastTid, Comm: commString(v.Comm[:]), CgroupID: v.CgroupId, MemcgID: v.MemcgId},
			Context: event.Context(k.Ctx), Order: k.Order, GFPFlags: event.Hex(k.GfpFlags),
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
	it := a.coll.Maps["extfrag_agg"].Iterate()
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
	var frames [127]uint64
	if err := a.coll.Maps["alloc_stacks"].Lookup(uint32(id), &frames); err != nil {
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
		if err := deleteWhere[allocAllocKey, allocAllocVal](a.coll.Maps["alloc_agg"], func(k allocAllocKey) bool { return drop[k.Pid] }); err != nil {
			return err
		}
	}
	if a := s.families[event.SignalExtfrag]; a != nil {
		if err := deleteWhere[extfragExtfragKey, extfragExtfragVal](a.coll.Maps["extfrag_agg"], func(k extfragExtfragKey) bool { return drop[k.Pid] }); err != nil {
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
