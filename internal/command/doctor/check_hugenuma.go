package doctor

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Huge pages per NUMA node and hugetlb cgroup limits, beside the pools:
// the pool is per node, so one node can run dry while the other has
// pages (a process bound to it gets ENOMEM at mmap or SIGBUS at fault),
// and a hugetlb cgroup limit refuses pages the pool has.

// readHugetlbLimits reads the hugetlb cgroups that limit a pool's page
// size, where the controller is mounted.
func readHugetlbLimits(procRoot string, pools []sysstate.HugePool) []hugetlbcg.Limits {
	hs, err := hugetlbcg.Hierarchies(filepath.Join(procRoot, "self/mountinfo"))
	if err != nil || len(hs) == 0 {
		return nil
	}
	var sizes []uint64
	for _, p := range pools {
		sizes = append(sizes, p.PageSizeKB<<10)
	}
	return hugetlbcg.Limited(hs[0], sizes)
}

// addHugeNUMA adds the per-node pools, the nodes that ran dry and the
// cgroup limits to the huge page finding.
func addHugeNUMA(f *Finding, in *Inputs) {
	nodes := map[int]bool{}
	for _, p := range in.NodePools {
		nodes[p.Node] = true
	}
	if len(nodes) > 1 {
		t := Table{Title: "Huge page pools per NUMA node", Header: []string{"node", "page size", "total", "free", "surplus"}}
		for _, p := range in.NodePools {
			if p.Total > 0 || p.Free > 0 {
				t.Rows = append(t.Rows, []string{strconv.Itoa(p.Node), kb(p.PageSizeKB), u(p.Total), u(p.Free), u(p.Surplus)})
			}
		}
		if len(t.Rows) > 0 {
			f.Tables = append(f.Tables, t)
		}
	}
	for _, s := range sysstate.NodeShortages(in.NodePools) {
		f.add("node pool exhausted", "%s", s)
		short := fmt.Sprintf("the %s pool is used up on node %v while other nodes have free pages", kb(s.PageSizeKB), s.Empty)
		if f.Severity >= Warn {
			f.Summary += "; " + short // a worse or equal finding keeps its summary first
			continue
		}
		f.Severity = Warn
		f.Summary = short
		f.Why = "The pool is per node: a process bound to the exhausted node (numactl --membind, mbind, a cpuset) gets ENOMEM at mmap or SIGBUS at its first touch although the pool as a whole has pages, and a process that spills to the other node reads its shared memory across the interconnect."
		f.Fix = append(f.Fix, fmt.Sprintf("grow node %d's pool (echo PAGES > /sys/devices/system/node/node%d/hugepages/hugepages-%dkB/nr_hugepages), or bind the database to a node with free pages (numactl --membind)",
			s.Empty[0], s.Empty[0], s.PageSizeKB))
	}
	for _, r := range in.RemoteHuge {
		f.add("huge pages remote from the CPUs", "%s", r.String())
		short := fmt.Sprintf("%s[%d] has %s of huge pages on a node its CPUs are not on", r.Comm, r.Pid, kb(r.RemoteKB))
		if f.Severity >= Warn {
			f.Summary += "; " + short
			continue
		}
		f.Severity = Warn
		f.Summary = short
		f.Why = "A fault takes its huge page from the faulting CPU's node while that node's pool has one, else from another node: a database bound to one node's CPUs (cpuset, taskset, numactl --cpunodebind) whose shared memory was faulted elsewhere, because its node's pool ran dry or another process touched the pages first, reads it across the interconnect for as long as it runs."
		f.Fix = append(f.Fix, fmt.Sprintf("grow the pool of node %d (the CPUs' node) and restart the database bound to it (numactl --cpunodebind=%d --membind=%d), so its shared memory is faulted there",
			r.CPUNodes[0], r.CPUNodes[0], r.CPUNodes[0]))
	}
	if len(in.HugetlbLimits) > 0 {
		t := Table{Title: "Hugetlb cgroup limits", Header: []string{"cgroup", "page size", "faulted", "limit", "reserved", "rsvd limit"}}
		for _, l := range in.HugetlbLimits {
			rsvd := "-"
			if l.RsvdUsage != nil {
				rsvd = size(*l.RsvdUsage)
			}
			t.Rows = append(t.Rows, []string{l.Path, size(l.PageSize), size(l.Usage), limitOrMax(l.Limit), rsvd, limitOrMax(l.RsvdLimit)})
		}
		f.Tables = append(f.Tables, t)
		f.note("a hugetlb cgroup limit counts faulted pages (beyond it a fault is SIGBUS, although the mapping reserved its pages); the rsvd limit counts reservations (mmap and shmget beyond it fail with ENOMEM although the pool has pages)")
	}
}

func limitOrMax(l *uint64) string {
	if l == nil {
		return "max"
	}
	return size(*l)
}
