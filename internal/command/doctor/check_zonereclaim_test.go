package doctor

import (
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
)

// zoneReclaimInputs is a host with mode and nodes NUMA nodes, measured
// for 60 s with these node reclaim stalls (nil: not measured).
func zoneReclaimInputs(mode int64, nodes int, nr *NodeReclaim) *Inputs {
	in := &Inputs{}
	in.Snap.Sysctl.ZoneReclaimMode = mode
	for i := range nodes {
		in.NUMA.Nodes = append(in.NUMA.Nodes, i)
	}
	in.Measured = &Measurement{Asked: time.Minute, Demand: demand.Summary{Measured: time.Minute}, NodeReclaim: nr}
	if nr == nil {
		in.Measured.NodeReclaimUnmeasured = "the reclaim family could not be attached"
	}
	return in
}

func TestZoneReclaimVerdictMeasured(t *testing.T) {
	costly := &NodeReclaim{Stalls: 1200, TotalNs: uint64(3 * time.Second), MaxNs: uint64(40 * time.Millisecond), Reclaimed: 38400,
		Processes: []NodeReclaimProc{{Pid: 42, Comm: "postgres", Stalls: 1000, TotalNs: uint64(2 * time.Second)}}}
	cheap := &NodeReclaim{Stalls: 3, TotalNs: uint64(300 * time.Microsecond), MaxNs: uint64(150 * time.Microsecond)}
	for _, c := range []struct {
		name  string
		in    *Inputs
		sev   Severity
		fix   bool
		wants []string // in the summary, evidence or notes
	}{
		{"one node, 0, none", zoneReclaimInputs(0, 1, &NodeReclaim{}), OK, false,
			[]string{"nothing to choose between", "no node reclaim in the 1m0s measured, as expected with 0"}},
		{"one node, 1, costly", zoneReclaimInputs(1, 1, costly), Problem, true,
			[]string{"1200 times in 1m0s", "50ms per second", "longest 40ms", "instead of leaving reclaim to kswapd", "turn it off", "postgres (pid 42): 1000 stalls, 2s"}},
		{"one node, 1, none", zoneReclaimInputs(1, 1, &NodeReclaim{}), Warn, true,
			[]string{"before kswapd is woken", "no node reclaim in the 1m0s measured: the setting cost nothing"}},
		{"two nodes, 1, costly", zoneReclaimInputs(1, 2, costly), Problem, true,
			[]string{"instead of allocating on another node: turn it off"}},
		{"two nodes, 1, cheap", zoneReclaimInputs(1, 2, cheap), Warn, true,
			[]string{"3 times in 1m0s", "5µs per second", "cheap so far"}},
		{"two nodes, 0, none", zoneReclaimInputs(0, 2, &NodeReclaim{}), OK, false,
			[]string{"allocates on another before reclaiming", "as expected with 0"}},
		{"two nodes, 0, stalls", zoneReclaimInputs(0, 2, cheap), Warn, false,
			[]string{"changed during the measurement"}},
		{"not measured", zoneReclaimInputs(1, 2, nil), Warn, true,
			[]string{"node reclaim stalls were not measured: the reclaim family could not be attached"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := checkZoneReclaim(c.in, nil)
			if f.Severity != c.sev || (len(f.Fix) > 0) != c.fix {
				t.Errorf("severity %v, fix %q; want %v, fix %v", f.Severity, f.Fix, c.sev, c.fix)
			}
			text := f.Summary + "\n" + strings.Join(f.Notes, "\n")
			for _, e := range f.Evidence {
				text += "\n" + e.Label + ": " + e.Value
			}
			for _, w := range c.wants {
				if !strings.Contains(text, w) {
					t.Errorf("lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestSumNodeReclaim(t *testing.T) {
	row := func(pid uint32, kind event.StallKind, n, total, maxNs uint64) event.ReclaimAggregate {
		r := event.ReclaimAggregate{Kind: kind, Reclaimed: n * 32}
		r.Pid, r.Comm = pid, "p"
		r.Count, r.TotalNs, r.MaxNs = n, total, maxNs
		return r
	}
	nr := sumNodeReclaim([]event.ReclaimAggregate{
		row(1, event.StallNodeReclaim, 2, 100, 80),
		row(1, event.StallNodeReclaim, 1, 50, 50), // another order or flags
		row(2, event.StallDirectReclaim, 9, 900, 900),
		row(3, event.StallNodeReclaim, 1, 500, 500),
		row(4, event.StallNodeReclaim, 1, 1, 1),
		row(5, event.StallNodeReclaim, 1, 2, 2),
		row(6, event.StallNodeReclaim, 1, 3, 3),
		row(7, event.StallNodeReclaim, 1, 4, 4),
	})
	if nr.Stalls != 8 || nr.TotalNs != 660 || nr.MaxNs != 500 || nr.Reclaimed != 8*32 {
		t.Errorf("totals %+v", nr)
	}
	if len(nr.Processes) != maxNodeReclaimProcs || nr.Processes[0].Pid != 3 || nr.Processes[1].Pid != 1 || nr.Processes[1].Stalls != 3 {
		t.Errorf("processes %+v", nr.Processes)
	}
	if nr := sumNodeReclaim(nil); nr == nil || nr.Stalls != 0 {
		t.Errorf("no rows: %+v", nr)
	}
}
