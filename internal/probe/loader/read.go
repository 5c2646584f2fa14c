package loader

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/memtrace/memtrace/internal/event"
)

// What the session core reads from every attached family, through the
// family's descriptor: its ring buffer, its counters, its aggregates.

// read drains one ring buffer until the reader is closed.
func (s *Session) read(a *attached) {
	defer s.wg.Done()
	var rec ringbuf.Record
	for {
		if err := a.reader.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrFlushed) && s.draining.Load() {
				return // everything produced before Stop has been read
			}
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		ev, err := a.decode(s, rec.RawSample)
		if err != nil {
			// A malformed record would be a bug in memtrace itself; count it
			// as lost rather than crash a tool run during an incident.
			s.decodeErrors.Add(1)
			continue
		}
		s.names.event(&ev)
		select {
		case s.events <- ev:
		case <-s.done:
			return
		}
	}
}

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

// Aggregates returns a complete read of a family's in-kernel aggregates,
// named, as a slice of its row type; nil when the family keeps none or is
// not attached. The outputs read every family through it.
func (s *Session) Aggregates(sig event.Signal) (any, error) {
	a := s.families[sig]
	if a == nil || a.aggregates == nil {
		return nil, nil
	}
	return a.aggregates(s)
}

// Attached reports whether a signal is attached.
func (s *Session) Attached(sig event.Signal) bool { return s.families[sig] != nil }

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
	for _, sig := range event.AllSignals {
		a := s.families[sig]
		if a == nil || a.forget == nil {
			continue
		}
		if err := a.forget(a.coll, func(pid uint32) bool { return drop[pid] }); err != nil {
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

// The commands and outputs use a session through event.Source.
var _ event.Source = (*Session)(nil)
