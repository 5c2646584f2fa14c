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
	if m := in.Measured; m != nil {
		if nr := m.NodeReclaim; nr != nil {
			f.add("node reclaim stalls measured", "%d over %v, %v in all, longest %v", nr.Stalls, m.Demand.Measured.Round(time.Millisecond),
				time.Duration(nr.TotalNs), time.Duration(nr.MaxNs))
		} else {
			f.note("node reclaim stalls were not measured: this build does not trace them")
		}
	}
	tradeoff := "The trade-off (the kernel's documentation, quoted by the seed): 1 keeps memory node-local by reclaiming the local page cache first, which suits workloads partitioned per node; 0 uses the other node's free memory first, which suits file servers and databases whose cache matters more than locality."
	f.Why = tradeoff
	switch {
	case nodes <= 1:
		f.Summary = fmt.Sprintf("%d with one NUMA node: zone reclaim has nothing to choose between", mode)
		if mode != 0 {
			f.note("the setting has no effect until the host has a second node")
		}
		f.Why = ""
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
