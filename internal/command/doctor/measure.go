package doctor

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
)

// Measurement is what `doctor --measure` traced: the atomic demand that
// vm.min_free_kbytes must cover, and the failures meanwhile.
type Measurement struct {
	Asked time.Duration `json:"asked_ns"`
	// Hook is the allocation hook the demand was counted on.
	Hook   string         `json:"hook"`
	Demand demand.Summary `json:"demand"`
	// Sources are the largest sampled sources of atomic demand.
	Sources []event.AtomicSource `json:"sources,omitempty"`
	// MaxDropKB is the largest fall of free memory (nr_free_pages)
	// between two readings Demand.Interval apart: net of frees, where
	// the demand is gross.
	MaxDropKB uint64           `json:"max_free_drop_kb"`
	Failures  MeasuredFailures `json:"failures"`
	// NodeReclaim is the evidence for or against vm.zone_reclaim_mode;
	// nil when the reclaim family could not be attached
	// (NodeReclaimUnmeasured says why).
	NodeReclaim           *NodeReclaim `json:"node_reclaim,omitempty"`
	NodeReclaimUnmeasured string       `json:"node_reclaim_unmeasured,omitempty"`
	// Interrupted is set when a signal ended the measurement early.
	Interrupted bool `json:"interrupted,omitempty"`
}

// MeasuredFailures are the allocation failures while measuring: exact
// counts from the in-kernel aggregates, verdicts from the failures sent
// as events (sampled: the first of each kind, then powers of two).
type MeasuredFailures struct {
	Total       uint64                       `json:"total"`
	Atomic      uint64                       `json:"atomic"`
	THPFallback uint64                       `json:"thp_fallback"`
	Verdicts    map[event.ZoneVerdict]uint64 `json:"verdicts,omitempty"`
}

// NodeReclaim is node reclaim (vm.zone_reclaim_mode) measured: how often
// allocations stalled reclaiming their local node, and for how long
// (mm_vmscan_node_reclaim_begin/_end, counted exactly in the kernel).
type NodeReclaim struct {
	Stalls  uint64 `json:"stalls"`
	TotalNs uint64 `json:"total_ns"`
	MaxNs   uint64 `json:"max_ns"`
	// Reclaimed is the pages the stalls reclaimed.
	Reclaimed uint64 `json:"reclaimed_pages"`
	// Processes are the processes that stalled, most time first (at
	// most maxNodeReclaimProcs).
	Processes []NodeReclaimProc `json:"processes,omitempty"`
}

// NodeReclaimProc is one process's node reclaim stalls.
type NodeReclaimProc struct {
	Pid     uint32 `json:"pid"`
	Comm    string `json:"comm"`
	Stalls  uint64 `json:"stalls"`
	TotalNs uint64 `json:"total_ns"`
}

const maxNodeReclaimProcs = 5

// nodeReclaimEvidence sums the node reclaim rows of the reclaim family's
// aggregates: the session started with the measurement, so they cover
// its window. It says why when the family is not attached.
func nodeReclaimEvidence(s MeasureSession) (*NodeReclaim, string, error) {
	attached := false
	for _, h := range s.Hooks() {
		if h.Signal == event.SignalReclaim {
			attached = h.Attached
		}
	}
	if !attached {
		return nil, "the reclaim family (mm_vmscan_node_reclaim_begin/_end) could not be attached", nil
	}
	raw, err := s.Aggregates(event.SignalReclaim)
	if err != nil {
		return nil, "", fmt.Errorf("reading reclaim stalls: %w", err)
	}
	rows, _ := raw.([]event.ReclaimAggregate)
	return sumNodeReclaim(rows), "", nil
}

// sumNodeReclaim adds up the node reclaim rows, by process.
func sumNodeReclaim(rows []event.ReclaimAggregate) *NodeReclaim {
	nr := &NodeReclaim{}
	byPid := map[uint32]*NodeReclaimProc{}
	for _, r := range rows {
		if r.Kind != event.StallNodeReclaim {
			continue
		}
		nr.Stalls += r.Count
		nr.TotalNs += r.TotalNs
		nr.MaxNs = max(nr.MaxNs, r.MaxNs)
		nr.Reclaimed += r.Reclaimed
		p := byPid[r.Pid]
		if p == nil {
			p = &NodeReclaimProc{Pid: r.Pid, Comm: r.Comm}
			byPid[r.Pid] = p
		}
		p.Stalls += r.Count
		p.TotalNs += r.TotalNs
	}
	for _, p := range byPid {
		nr.Processes = append(nr.Processes, *p)
	}
	slices.SortFunc(nr.Processes, func(a, b NodeReclaimProc) int {
		return cmp.Or(cmp.Compare(b.TotalNs, a.TotalNs), cmp.Compare(b.Stalls, a.Stalls), cmp.Compare(a.Pid, b.Pid))
	})
	if len(nr.Processes) > maxNodeReclaimProcs {
		nr.Processes = nr.Processes[:maxNodeReclaimProcs]
	}
	return nr
}

// MeasureSession is what Measure reads of the probes: the allocation
// family's demand counters, sampled sources and failures, and the reclaim
// family's node reclaim stalls. The doctor does
// not load probes itself (the command layer does not import the probe
// layer): the caller's start function does, with the allocation family.
type MeasureSession interface {
	Hooks() []event.HookStatus
	Events() <-chan event.Event
	AtomicDemandCounted() error
	AtomicDemand() (event.AtomicDemand, error)
	AtomicSources() ([]event.AtomicSource, error)
	AllocAggregates() ([]event.AllocAggregate, error)
	// Aggregates reads a family's aggregates (the reclaim family's, for
	// node reclaim).
	Aggregates(sig event.Signal) (any, error)
	Stop() error
	Close() error
}

// Measure traces atomic demand for d (until ctx ends, if sooner) on the
// session start returns, demand read every interval (100 ms when 0).
func Measure(ctx context.Context, start func() (MeasureSession, error), d, interval time.Duration, procRoot string) (*Measurement, error) {
	s, err := start()
	if err != nil {
		return nil, fmt.Errorf("starting the measurement: %w", err)
	}
	defer s.Close()
	if err := s.AtomicDemandCounted(); err != nil {
		return nil, fmt.Errorf("measuring atomic demand: %w", err)
	}
	m := &Measurement{Asked: d, Failures: MeasuredFailures{Verdicts: map[event.ZoneVerdict]uint64{}}}
	for _, h := range s.Hooks() {
		if h.Signal == event.SignalAlloc {
			m.Hook = h.Hook
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range s.Events() {
			if a := ev.AllocFailure; a != nil && a.ZoneState != nil {
				m.Failures.Verdicts[a.ZoneState.Verdict]++
			}
		}
	})

	mctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	meter := demand.NewMeter(interval)
	free := freeFall{path: filepath.Join(procRoot, "vmstat"), pageKB: uint64(os.Getpagesize() / 1024)}
	m.Demand, err = demand.Run(mctx, meter, func() (event.AtomicDemand, error) {
		free.read()
		return s.AtomicDemand()
	})
	m.Interrupted = ctx.Err() != nil
	m.MaxDropKB = free.maxDrop
	if err != nil {
		return nil, err
	}
	if m.NodeReclaim, m.NodeReclaimUnmeasured, err = nodeReclaimEvidence(s); err != nil {
		return nil, err
	}
	if err := s.Stop(); err != nil {
		return nil, fmt.Errorf("stopping the measurement: %w", err)
	}
	wg.Wait()
	if m.Sources, err = s.AtomicSources(); err != nil {
		return nil, err
	}
	if len(m.Sources) > 5 {
		m.Sources = m.Sources[:5]
	}
	aggs, err := s.AllocAggregates()
	if err != nil {
		return nil, err
	}
	for _, a := range aggs {
		m.Failures.Total += a.Count
		if a.Atomic {
			m.Failures.Atomic += a.Count
		}
		if a.THPFallback {
			m.Failures.THPFallback += a.Count
		}
	}
	return m, nil
}

// freeFall keeps the largest fall of nr_free_pages between readings.
type freeFall struct {
	path    string
	pageKB  uint64
	prev    uint64
	have    bool
	maxDrop uint64
}

func (f *freeFall) read() {
	v, ok := readFreePages(f.path)
	if !ok {
		return
	}
	if f.have && v < f.prev {
		f.maxDrop = max(f.maxDrop, (f.prev-v)*f.pageKB)
	}
	f.prev, f.have = v, true
}

// peakSource names the largest sampled source.
func peakSource(src []event.AtomicSource) string {
	if len(src) == 0 {
		return ""
	}
	top := src[0]
	who := fmt.Sprintf("%s (pid %d)", top.Comm, top.Pid)
	if top.Context.Interrupt() {
		who = fmt.Sprintf("%s, interrupting %s", top.Context, who)
	}
	class := "without __GFP_HIGH"
	if top.High {
		class = "GFP_ATOMIC"
	}
	// The size beside the pages: a count like 15354432 pages says
	// nothing at a glance, 59 GiB does.
	pages := cmp.Or(top.EstimatedPages, top.SampledPages)
	return fmt.Sprintf("%s: about %d pages (%s) %s (%d samples)", who, pages, kb(pages*pageKB()), class, top.Samples)
}
