package doctor

import (
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// TestHugeNodeShortage: on the two-node tree of internal/host/sysstate,
// node 0's 2 MiB pool is used up while node 1 has 384 free pages; the
// huge page finding warns about it and lists the hugetlb cgroup limits.
func TestHugeNodeShortage(t *testing.T) {
	pools, err := sysstate.ReadNodePools("../../host/sysstate/testdata/twonode/sys")
	if err != nil {
		t.Fatal(err)
	}
	lim := uint64(1 << 30)
	in := &Inputs{NodePools: pools, HugetlbLimits: []hugetlbcg.Limits{{Path: "/kubepods", PageSize: 2 << 20, Usage: 1 << 30, Limit: &lim}}}
	in.Snap.Memory.HugepageSizeKB = 2048
	in.Snap.Memory.MemTotalKB = 256 << 20
	in.Snap.HugePools = []sysstate.HugePool{{PageSizeKB: 2048, Total: 1024, Free: 384}, {PageSizeKB: 1 << 20, Total: 2, Free: 2}}
	f := checkHugePools(in)
	if f.Severity != Warn || !strings.Contains(f.Summary, "used up on node [0]") {
		t.Errorf("%s: %s", f.Severity, f.Summary)
	}
	var ev, tables []string
	for _, e := range f.Evidence {
		ev = append(ev, e.Label+": "+e.Value)
	}
	for _, tb := range f.Tables {
		tables = append(tables, tb.Title)
	}
	if !strings.Contains(strings.Join(ev, "\n"), "node pool exhausted: 2048 kB pages: node 0 exhausted (no free page) while node 1: 384 free") {
		t.Errorf("evidence %q", ev)
	}
	if !strings.Contains(strings.Join(tables, ","), "Huge page pools per NUMA node") || !strings.Contains(strings.Join(tables, ","), "Hugetlb cgroup limits") {
		t.Errorf("tables %q", tables)
	}
}

// TestHugeRemoteFromCPUs: on the two-node trees, PostgreSQL's postmaster
// may run on node 0's CPUs only while 256 MiB of its huge pages are on
// node 1: the huge page finding warns, names it and says how to bind it.
func TestHugeRemoteFromCPUs(t *testing.T) {
	remote, err := hugepages.ReadRemote("../hugepages/testdata/twonode/proc", "../../host/sysstate/testdata/twonode/sys", []int{4242})
	if err != nil || len(remote) != 1 {
		t.Fatalf("%+v, %v", remote, err)
	}
	in := &Inputs{RemoteHuge: remote}
	in.Snap.Memory.HugepageSizeKB = 2048
	in.Snap.Memory.MemTotalKB = 256 << 20
	in.Snap.HugePools = []sysstate.HugePool{{PageSizeKB: 2048, Total: 1024, Free: 384}}
	f := checkHugePools(in)
	var ev []string
	for _, e := range f.Evidence {
		ev = append(ev, e.Label+": "+e.Value)
	}
	t.Logf("%s: %s\n%s\nfix: %q", f.Severity, f.Summary, strings.Join(ev, "\n"), f.Fix)
	if f.Severity != Warn || !strings.Contains(f.Summary, "postgres[4242] has 256 MiB of huge pages on a node its CPUs are not on") {
		t.Errorf("%s: %s", f.Severity, f.Summary)
	}
	if !strings.Contains(strings.Join(ev, "\n"), "huge pages remote from the CPUs: postgres[4242] may run only on CPUs 0-15,32-47 (node 0)") ||
		!strings.Contains(strings.Join(f.Fix, "\n"), "numactl --cpunodebind=0 --membind=0") {
		t.Errorf("evidence %q, fix %q", ev, f.Fix)
	}
}
