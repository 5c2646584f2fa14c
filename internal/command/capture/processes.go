package capture

import (
	"sort"

	"github.com/memtrace/memtrace/internal/event"
)

// Summarize rolls aggregates and huge-page and warn_alloc events up per
// process. Failure counts come from the exact in-kernel aggregates, never
// from sampled events; huge-page and warn_alloc events are not sampled.
func Summarize(allocs []event.AllocAggregate, frags []event.ExtfragAggregate, unsampled []event.Event) []Process {
	byPid := map[uint32]*Process{}
	get := func(pid uint32, comm string) *Process {
		p := byPid[pid]
		if p == nil {
			p = &Process{Pid: pid, Comm: comm}
			byPid[pid] = p
		}
		if p.Comm == "" {
			p.Comm = comm
		}
		return p
	}
	for _, a := range allocs {
		p := get(a.Pid, a.Comm)
		p.AllocFailures += a.Count
		if a.Atomic {
			p.AtomicFailures += a.Count
		}
		if a.THPFallback {
			p.THPFallbacks += a.Count
		}
		if p.AllocContexts == nil {
			p.AllocContexts = map[string]uint64{}
		}
		p.AllocContexts[a.Context.String()] += a.Count
		if !containsU32(p.AllocOrders, a.Order) {
			p.AllocOrders = append(p.AllocOrders, a.Order)
		}
	}
	for _, f := range frags {
		p := get(f.Pid, f.Comm)
		p.ExtfragEvents += f.Count
		p.ExtfragFragmenting += f.Fragmenting
	}
	for _, ev := range unsampled {
		if w := ev.WarnAlloc; w != nil && w.Logged {
			get(ev.Pid, ev.Comm).LoggedFailures++
		}
		h := ev.Hugetlb
		if h == nil {
			continue
		}
		p := get(ev.Pid, ev.Comm)
		switch {
		case h.HugeRequest:
			p.HugetlbRequests++
			if !h.OK {
				p.HugetlbFailures++
			} else if h.Call != event.CallShmat {
				p.HugetlbBytes += h.Size
			}
		case h.AfterHugeFailure && h.OK:
			p.HugetlbFallbacks++
		}
	}
	out := make([]Process, 0, len(byPid))
	for _, p := range byPid {
		sort.Slice(p.AllocOrders, func(i, j int) bool { return p.AllocOrders[i] < p.AllocOrders[j] })
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AllocFailures != out[j].AllocFailures {
			return out[i].AllocFailures > out[j].AllocFailures
		}
		return out[i].Pid < out[j].Pid
	})
	return out
}

func containsU32(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
