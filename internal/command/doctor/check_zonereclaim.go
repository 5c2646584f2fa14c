package doctor

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bits of vm.zone_reclaim_mode (Documentation/admin-guide/sysctl/vm.rst).
const (
	reclaimZone  = 1 // reclaim in the local node before going to another
	reclaimWrite = 2 // and write dirty pages out to do so
	reclaimSwap  = 4 // and swap pages out to do so
)

// reclaimDistance is RECLAIM_DISTANCE: kernels before 3.16 turned zone
// reclaim on at boot when two nodes were farther apart than this.
const reclaimDistance = 30

func checkZoneReclaim(in *Inputs, groups []FailureGroup) Finding {
	f := Finding{ID: "zone-reclaim", Title: "NUMA zone reclaim (vm.zone_reclaim_mode)"}
	mode := in.Snap.Sysctl.ZoneReclaimMode
	nodes := len(in.NUMA.Nodes)
	f.add("vm.zone_reclaim_mode", "%d: %s", mode, reclaimBits(mode))
	f.add("NUMA nodes", "%d (%s)", nodes, joinInts(in.NUMA.Nodes))
	if len(in.NUMA.Distance) > 1 {
		t := Table{Title: "node distances (10 = local)", Header: []string{"from/to"}}
		for _, n := range in.NUMA.Nodes {
			t.Header = append(t.Header, strconv.Itoa(n))
		}
		for i, row := range in.NUMA.Distance {
			r := []string{strconv.Itoa(in.NUMA.Nodes[i])}
			for _, d := range row {
				r = append(r, strconv.Itoa(d))
			}
			t.Rows = append(t.Rows, r)
		}
		f.Tables = append(f.Tables, t)
	}
	if in.Meminfo.CachedKB > 0 {
		f.add("page cache", "%s (%s of memory)", kb(in.Meminfo.CachedKB), pct(float64(in.Meminfo.CachedKB), float64(in.Snap.Memory.MemTotalKB)))
	}
	if v, ok := in.Snap.Vmstat["zone_reclaim_failed"]; ok {
		f.add("zone_reclaim_failed", "%d since boot", v)
	}
	tradeoff := "The trade-off (the kernel's documentation, quoted by the seed): 1 keeps memory node-local by reclaiming the local page cache first, which suits workloads partitioned per node; 0 uses the other node's free memory first, which suits file servers and databases whose cache matters more than locality."
	f.Why = tradeoff
	switch {
	case nodes <= 1 && mode == 0:
		f.Summary = "0 with one NUMA node: zone reclaim has nothing to choose between"
		f.Why = ""
	case nodes <= 1:
		// node_reclaim() runs for any node within RECLAIM_DISTANCE of
		// the allocating one, the local node included.
		f.Severity = Warn
		f.Summary = fmt.Sprintf("%d with one NUMA node: no other node to allocate from, but allocations reclaim the node's page cache themselves whenever a zone falls to its low watermark, before kswapd is woken", mode)
		f.Why = "On one node zone reclaim buys no locality: it only moves reclaim from kswapd into the allocating tasks (mm_vmscan_node_reclaim_begin/_end), as latency."
		f.Fix = []string{"sysctl -w vm.zone_reclaim_mode=0", "echo 'vm.zone_reclaim_mode = 0' > /etc/sysctl.d/90-memtrace-zone-reclaim.conf"}
	case mode == 0:
		f.Summary = "0: a node short of memory allocates on another before reclaiming its own page cache"
		f.note("the seed suggested 1 for its 2.6.32 host with atomic failures; on a database host 0 is the better default since 3.16 (kernels before that switched zone reclaim on when nodes were more than %d apart)", reclaimDistance)
	case mode&(reclaimWrite|reclaimSwap) != 0:
		f.Severity = Problem
		f.Summary = fmt.Sprintf("%d: to keep memory local the kernel writes dirty pages or swaps, with the other node's memory free", mode)
		f.Why = "Writing out and swapping to avoid a remote allocation costs I/O and latency spikes on every allocation burst; the other node's memory is only some tens of percent slower. " + tradeoff
		f.Fix = []string{"sysctl -w vm.zone_reclaim_mode=0", "echo 'vm.zone_reclaim_mode = 0' > /etc/sysctl.d/90-memtrace-zone-reclaim.conf"}
	default:
		f.Severity = Warn
		f.Summary = fmt.Sprintf("%d: a node short of memory reclaims its own page cache before using another node's free memory", mode)
		if in.NUMA.MaxDistance() > 0 {
			f.note("the largest node distance is %d", in.NUMA.MaxDistance())
		}
		f.note("with 1 the seed's atomic failures find memory the local reclaim freed; if page cache is what this host lives on (a database, a file server), 0 keeps it")
		f.Fix = []string{"sysctl -w vm.zone_reclaim_mode=0   # if the page cache matters more than node locality", "echo 'vm.zone_reclaim_mode = 0' > /etc/sysctl.d/90-memtrace-zone-reclaim.conf"}
	}
	if m := in.Measured; m != nil {
		measuredNodeReclaim(&f, mode, nodes, m)
	}
	// Failures concentrated on one node are what zone reclaim is about.
	for _, g := range groups {
		if g.Atomic() && nodes > 1 && g.Example.Nodemask != "" && g.Example.Nodemask != "(null)" {
			f.note("%s's failures were bound to nodes %s", g.Comm, g.Example.Nodemask)
		}
	}
	return f
}

func reclaimBits(mode int64) string {
	if mode == 0 {
		return "off (allocate on another node first)"
	}
	var on []string
	if mode&reclaimZone != 0 {
		on = append(on, "1 reclaim the local node first")
	}
	if mode&reclaimWrite != 0 {
		on = append(on, "2 write dirty pages")
	}
	if mode&reclaimSwap != 0 {
		on = append(on, "4 swap")
	}
	if rest := mode &^ (reclaimZone | reclaimWrite | reclaimSwap); rest != 0 {
		on = append(on, fmt.Sprintf("unknown bits %#x", rest))
	}
	return strings.Join(on, ", ")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// Node reclaim costs this much before the verdict asks to turn it off
// whatever the workload: a millisecond of stall per second of wall time
// (0.1% of a CPU), or one stall of 10 ms (a missed frame, a slow query).
const (
	nodeReclaimCostly  = time.Millisecond // per second measured
	nodeReclaimLongest = 10 * time.Millisecond
)

// measuredNodeReclaim weighs zone_reclaim_mode against the node reclaim
// stalls `--measure` traced: their count, time and cost per second.
func measuredNodeReclaim(f *Finding, mode int64, nodes int, m *Measurement) {
	nr := m.NodeReclaim
	if nr == nil {
		f.note("node reclaim stalls were not measured: %s", m.NodeReclaimUnmeasured)
		return
	}
	window := m.Demand.Measured
	if window <= 0 {
		window = m.Asked
	}
	perSec := time.Duration(0)
	if window > 0 {
		perSec = time.Duration(float64(nr.TotalNs) / window.Seconds())
	}
	f.add("node reclaim stalls measured", "%d in %v: %v in all (%v per second), longest %v, %d pages reclaimed",
		nr.Stalls, window.Round(time.Millisecond), time.Duration(nr.TotalNs).Round(time.Microsecond),
		perSec.Round(time.Microsecond), time.Duration(nr.MaxNs).Round(time.Microsecond), nr.Reclaimed)
	for _, p := range nr.Processes {
		f.add("stalled in node reclaim", "%s (pid %d): %d stalls, %v", p.Comm, p.Pid, p.Stalls, time.Duration(p.TotalNs).Round(time.Microsecond))
	}
	switch {
	case mode == 0 && nr.Stalls == 0:
		f.note("no node reclaim in the %v measured, as expected with 0", window.Round(time.Millisecond))
	case mode == 0:
		// node_reclaim() returns at once with the mode 0.
		f.raise(Warn)
		f.note("node reclaim ran although vm.zone_reclaim_mode is 0 now: it was changed during the measurement; measure again")
	case nr.Stalls == 0:
		f.note("no node reclaim in the %v measured: the setting cost nothing in this window; it costs when a node's free memory falls to its low watermark, so measure under the load that matters", window.Round(time.Millisecond))
	default:
		costly := perSec >= nodeReclaimCostly || time.Duration(nr.MaxNs) >= nodeReclaimLongest
		if costly {
			f.raise(Problem)
		} else {
			f.raise(Warn)
		}
		where := "instead of allocating on another node"
		if nodes <= 1 {
			where = "instead of leaving reclaim to kswapd (the host has one node)"
		}
		verdict := "turn it off"
		if !costly {
			verdict = fmt.Sprintf("cheap so far (under %v per second, none %v or longer); turn it off if page cache matters more than node locality", nodeReclaimCostly, nodeReclaimLongest)
		}
		f.Summary = fmt.Sprintf("%d: allocations stalled in node reclaim %d times in %v, %v per second, longest %v, %s: %s",
			mode, nr.Stalls, window.Round(time.Millisecond), perSec.Round(time.Microsecond), time.Duration(nr.MaxNs).Round(time.Microsecond), where, verdict)
		f.Fix = []string{"sysctl -w vm.zone_reclaim_mode=0", "echo 'vm.zone_reclaim_mode = 0' > /etc/sysctl.d/90-memtrace-zone-reclaim.conf"}
	}
}
