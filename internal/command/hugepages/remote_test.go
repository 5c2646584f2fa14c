package hugepages

import (
	"reflect"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/host/sysstate"
)

const twoNodeSys = "../../host/sysstate/testdata/twonode/sys"

// TestReadRemoteTwoNode: on the two-node trees, the postmaster's CPUs are
// node 0's and 256 MiB of its 2 MiB pages are on node 1; the backend's are
// node 1's and 128 MiB of its 2 MiB pages are on node 0 (its 1 GiB pages,
// bound to node 1, are local).
func TestReadRemoteTwoNode(t *testing.T) {
	got, err := ReadRemote("testdata/twonode/proc", twoNodeSys, []int{4242, 4250, 9999})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d remote processes, want 2: %+v", len(got), got)
	}
	pm, be := got[0], got[1]
	if pm.Pid != 4242 || !reflect.DeepEqual(pm.CPUNodes, []int{0}) || pm.RemoteKB != 256<<10 || pm.LocalKB != 1<<20 ||
		!reflect.DeepEqual(pm.Remote, []NodeUse{{Node: 1, PageSizeKB: 2048, KB: 256 << 10}}) {
		t.Errorf("postmaster %+v", pm)
	}
	if be.Pid != 4250 || !reflect.DeepEqual(be.CPUNodes, []int{1}) || be.RemoteKB != 128<<10 || be.LocalKB != 64<<10+4<<20 {
		t.Errorf("backend %+v", be)
	}
	s := pm.String()
	t.Log(s)
	for _, want := range []string{"postgres[4242]", "CPUs 0-15,32-47 (node 0) but 256 MiB of its 1.2 GiB of huge pages are on other nodes (256 MiB of 2 MiB pages on node 1)"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}

// TestFindRemoteNothingToSay: CPUs on every node, one node, or no CPU
// list: no finding.
func TestFindRemoteNothingToSay(t *testing.T) {
	use := []NodeUse{{Node: 0, PageSizeKB: 2048, KB: 4096}, {Node: 1, PageSizeKB: 2048, KB: 2048}}
	nodes := map[int][]int{0: {0, 1}, 1: {2, 3}}
	for _, c := range []struct {
		cpus  string
		nodes map[int][]int
	}{
		{"0-3", nodes},
		{"", nodes},
		{"0-1", map[int][]int{0: {0, 1, 2, 3}}},
		{"7", nodes},
	} {
		if r, ok := FindRemote(1, "db", c.cpus, use, c.nodes); ok {
			t.Errorf("cpus %q, nodes %v: %+v", c.cpus, c.nodes, r)
		}
	}
}

// TestWriteRemote: the finding is printed under the per-node pools, the
// process name escaped.
func TestWriteRemote(t *testing.T) {
	r := &Report{NodePools: []sysstate.NodePool{{Node: 0, PageSizeKB: 2048, Total: 8}, {Node: 1, PageSizeKB: 2048, Total: 8, Free: 8}},
		RemoteHuge: []RemoteHuge{{Pid: 7, Comm: "db\x1b[2J", CPUs: "0-1", CPUNodes: []int{0}, RemoteKB: 4096,
			Remote: []NodeUse{{Node: 1, PageSizeKB: 2048, KB: 4096}}}}}
	var b strings.Builder
	if err := writePlacement(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "  remote: db\\x1b[2J[7] may run only on CPUs 0-1 (node 0)") || strings.Contains(out, "\x1b") {
		t.Errorf("output:\n%s", out)
	}
}
