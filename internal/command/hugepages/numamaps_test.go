package hugepages

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// testdata/twonode/proc holds hand-made numa_maps of PostgreSQL on a
// two-socket host: the postmaster's 1.25 GiB of 2 MiB pages are 1 GiB on
// node 0 (its whole pool) and 256 MiB on node 1; a backend has touched
// 192 MiB of them and maps a 1 GiB-page file bound to node 1.
func TestNumaMapsTwoNode(t *testing.T) {
	ms, err := ReadNumaMaps("testdata/twonode/proc", 4242)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 7 {
		t.Fatalf("%d mappings", len(ms))
	}
	h := ms[3]
	if !h.Huge || h.File != "/anon_hugepage (deleted)" || h.PageSizeKB != 2048 || h.Start != 0x7f3a2c000000 ||
		!reflect.DeepEqual(h.Pages, map[int]uint64{0: 512, 1: 128}) {
		t.Errorf("huge mapping %+v", h)
	}
	if ms[5].Huge || ms[5].File != "/SYSV0098e619 (deleted)" {
		t.Errorf("SysV mapping on base pages %+v", ms[5])
	}
	want := []NodeUse{{Node: 0, PageSizeKB: 2048, KB: 1 << 20}, {Node: 1, PageSizeKB: 2048, KB: 256 << 10}}
	if got := HugeByNode(ms); !reflect.DeepEqual(got, want) {
		t.Errorf("by node %+v, want %+v", got, want)
	}
	ms, err = ReadNumaMaps("testdata/twonode/proc", 4250)
	if err != nil {
		t.Fatal(err)
	}
	want = []NodeUse{{Node: 0, PageSizeKB: 2048, KB: 128 << 10}, {Node: 1, PageSizeKB: 2048, KB: 64 << 10}, {Node: 1, PageSizeKB: 1 << 20, KB: 4 << 20}}
	if got := HugeByNode(ms); !reflect.DeepEqual(got, want) {
		t.Errorf("by node %+v, want %+v", got, want)
	}
	if ms[2].Policy != "bind:1" {
		t.Errorf("policy %q", ms[2].Policy)
	}
}

func TestNumaMapsMalformed(t *testing.T) {
	for _, in := range []string{
		"zzzz default\n",
		"7f00\n",
		"7f00 default N0=x\n",
		"7f00 default kernelpagesize_kB=-1\n",
		"7f00 default N99999999999=1\n",
	} {
		if _, err := ParseNumaMaps(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// TestWritePlacementTwoNode draws the per-node pools, the shortage and
// the processes' pages by node, and a cgroup limit.
func TestWritePlacementTwoNode(t *testing.T) {
	pools, err := sysstate.ReadNodePools("../../host/sysstate/testdata/twonode/sys")
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := ReadNumaMaps("testdata/twonode/proc", 4242)
	lim := uint64(1 << 30)
	r := &Report{
		NodePools: pools, NodeShortages: sysstate.NodeShortages(pools),
		Processes:    []Process{{Status: Status{Pid: 4242, Comm: "postgres\x1b[2J"}, HugeByNode: HugeByNode(ms)}},
		CgroupLimits: []hugetlbcg.Limits{{Path: "/kubepods/pod1", PageSize: 2 << 20, Usage: 512 << 20, Limit: &lim, LimitFile: "hugetlb.2MB.max"}},
	}
	var b bytes.Buffer
	if err := writePlacement(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Huge page pools per NUMA node",
		"short: 2048 kB pages: node 0 exhausted (no free page) while node 1: 384 free",
		"node 0: 1 GiB, node 1: 256 MiB",
		`postgres\x1b[2J`,
		"/kubepods/pod1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("unescaped name in\n%s", out)
	}
}

func FuzzParseNumaMaps(f *testing.F) {
	f.Add("7f3a2c000000 default file=/anon_hugepage\\040(deleted) huge dirty=36 N0=20 N1=16 kernelpagesize_kB=2048\n")
	f.Add("55d0 bind:1 heap anon=1 N3=1 kernelpagesize_kB=4\n\n")
	f.Add("0 interleave:0-1 file=\\ N0=18446744073709551615 kernelpagesize_kB=18446744073709551615")
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := ParseNumaMaps(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range ms {
			for n := range m.Pages {
				if n < 0 {
					t.Fatalf("negative node in %+v", m)
				}
			}
		}
		_ = HugeByNode(ms)
	})
}
