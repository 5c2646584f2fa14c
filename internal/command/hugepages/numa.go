package hugepages

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/present/text"
)

// collectPlacement adds the per-node pools, the processes' huge pages per
// node, the nodes whose pool ran dry while another's has pages, and the
// hugetlb cgroup limits.
func (r *Report) collectPlacement(opts Options) {
	pools, err := sysstate.ReadNodePools(opts.SysRoot)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	if pools == nil {
		pools = []sysstate.NodePool{} // a kernel without NUMA: none, never null
	}
	r.NodePools = pools
	r.NodeShortages = sysstate.NodeShortages(pools)
	nodeCPUs, err := NodeCPUs(opts.SysRoot)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	for i := range r.Processes {
		p := &r.Processes[i]
		if len(p.Hugetlb) == 0 {
			continue
		}
		if ms, err := ReadNumaMaps(opts.ProcRoot, p.Pid); err == nil {
			p.HugeByNode = HugeByNode(ms)
		}
		if st, err := ReadStatus(opts.ProcRoot, p.Pid); err == nil {
			if rh, ok := FindRemote(p.Pid, p.Comm, st.CPUsAllowed, p.HugeByNode, nodeCPUs); ok {
				r.RemoteHuge = append(r.RemoteHuge, rh)
			}
		}
	}
	if hs, err := hugetlbcg.Hierarchies(filepath.Join(opts.ProcRoot, "self/mountinfo")); err == nil && len(hs) > 0 {
		var sizes []uint64
		for _, p := range r.Pools {
			sizes = append(sizes, p.PageSizeKB<<10)
		}
		r.CgroupLimits = hugetlbcg.Limited(hs[0], sizes)
	}
}

// writePlacement writes the per-node pools (with more than one node, or
// when a node is short), the processes' huge pages per node and the
// hugetlb cgroup limits.
func writePlacement(w io.Writer, r *Report) error {
	nodes := map[int]bool{}
	for _, p := range r.NodePools {
		nodes[p.Node] = true
	}
	if len(nodes) > 1 {
		fmt.Fprintln(w, "\nHuge page pools per NUMA node")
		t := text.NewTable(w, "NODE", "PAGE SIZE", "TOTAL", "FREE", "SURP")
		for _, p := range r.NodePools {
			t.Append([]string{strconv.Itoa(p.Node), kib(p.PageSizeKB), u(p.Total), u(p.Free), u(p.Surplus)})
		}
		if err := t.Render(); err != nil {
			return err
		}
		for _, s := range r.NodeShortages {
			fmt.Fprintf(w, "  short: %s: a process bound to the exhausted node gets no huge page (mmap ENOMEM or SIGBUS at fault)\n", s)
		}
		var rows [][]string
		for _, p := range r.Processes {
			var parts []string
			for _, n := range p.HugeByNode {
				parts = append(parts, fmt.Sprintf("node %d: %s", n.Node, kib(n.KB)))
			}
			if len(parts) > 0 {
				rows = append(rows, []string{strconv.Itoa(p.Pid), text.Escape(p.Comm), strings.Join(parts, ", ")})
			}
		}
		if len(rows) > 0 {
			fmt.Fprintln(w, "\nHuge pages of each process by node (numa_maps)")
			t := text.NewTable(w, "PID", "COMM", "HUGE PAGES BY NODE")
			for _, row := range rows {
				t.Append(row)
			}
			if err := t.Render(); err != nil {
				return err
			}
		}
		for _, rh := range r.RemoteHuge {
			fmt.Fprintf(w, "  remote: %s\n", text.Escape(rh.String()))
		}
	}
	if len(r.CgroupLimits) > 0 {
		fmt.Fprintln(w, "\nHugetlb cgroup limits")
		t := text.NewTable(w, "CGROUP", "PAGE SIZE", "FAULTED", "LIMIT", "RESERVED", "RSVD LIMIT", "REFUSED")
		for _, l := range r.CgroupLimits {
			rsvd := "-"
			if l.RsvdUsage != nil {
				rsvd = size(*l.RsvdUsage)
			}
			refused := "-"
			if l.Failures != nil {
				refused = u(*l.Failures)
			}
			t.Append([]string{text.Escape(l.Path), size(l.PageSize), size(l.Usage), limit(l.Limit), rsvd, limit(l.RsvdLimit), refused})
		}
		if err := t.Render(); err != nil {
			return err
		}
		fmt.Fprintln(w, "  the limit counts faulted pages (a fault beyond it is SIGBUS); the rsvd limit counts reservations (mmap/shmget beyond it fail with ENOMEM)")
	}
	return nil
}

func limit(l *uint64) string {
	if l == nil {
		return "max"
	}
	return size(*l)
}
