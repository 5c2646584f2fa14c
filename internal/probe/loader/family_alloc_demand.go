package loader

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/memtrace/memtrace/internal/event"
)

// Atomic demand (issue 13, signal 4): the alloc family's programs add the
// pages of every allocation that cannot sleep to a per-CPU counter, and
// attribute a sample of them to processes. These read them.

// errNoAtomicDemand is AtomicDemand's error when nothing is counted.
var errNoAtomicDemand = errors.New("atomic demand is not counted")

// AtomicDemandCounted says whether the session counts atomic demand, and
// if not, why.
func (s *Session) AtomicDemandCounted() error {
	switch {
	case !s.cfg.AtomicDemand:
		return fmt.Errorf("%w: not asked for", errNoAtomicDemand)
	case s.families[event.SignalAlloc] == nil:
		return fmt.Errorf("%w: the alloc signal is not attached", errNoAtomicDemand)
	case s.gfpDirectReclaim == 0:
		return fmt.Errorf("%w: __GFP_DIRECT_RECLAIM is not known on this kernel (no GFP table)", errNoAtomicDemand)
	}
	return nil
}

// AtomicDemand returns the pages of atomic allocations since the session
// started, summed over CPUs. It is a few microseconds: a reader may call
// it every 100 ms or faster. The counts are system-wide unless the
// session filters by process, command or cgroup. Allocations of the bulk
// allocator's fast path (alloc_pages_bulk: page_pool refills, sunrpc)
// do not pass the tracepoint and are not counted.
func (s *Session) AtomicDemand() (event.AtomicDemand, error) {
	if err := s.AtomicDemandCounted(); err != nil {
		return event.AtomicDemand{}, err
	}
	var perCPU []allocAtomicDemand
	if err := s.families[event.SignalAlloc].coll.Maps[allocMapAtomicPcpu].Lookup(uint32(0), &perCPU); err != nil {
		return event.AtomicDemand{}, fmt.Errorf("reading atomic demand: %w", err)
	}
	var d event.AtomicDemand
	for _, c := range perCPU {
		d.OtherPages += c.Pages[0]
		d.HighPages += c.Pages[1]
	}
	return d, nil
}

// AtomicSources returns who made the sampled atomic demand, named, most
// pages first.
func (s *Session) AtomicSources() ([]event.AtomicSource, error) {
	if err := s.AtomicDemandCounted(); err != nil || s.cfg.AtomicSampleEvery == 0 {
		return nil, err
	}
	var out []event.AtomicSource
	var k allocAtomicTopKey
	var v allocAtomicTopVal
	it := s.families[event.SignalAlloc].coll.Maps[allocMapAtomicTop].Iterate()
	for it.Next(&k, &v) {
		out = append(out, event.AtomicSource{
			Task:    event.Task{Pid: k.Pid, Comm: commString(v.Comm[:])},
			Context: contextOf(k.Ctx), High: k.High != 0, Samples: v.Samples,
			SampledPages: v.Pages, EstimatedPages: v.Pages * uint64(s.cfg.AtomicSampleEvery),
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading atomic_top: %w", err)
	}
	slices.SortFunc(out, func(a, b event.AtomicSource) int { return cmp.Compare(b.SampledPages, a.SampledPages) })
	s.names.atomicSources(out)
	return out, nil
}
