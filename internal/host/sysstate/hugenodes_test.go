package sysstate

import (
	"reflect"
	"testing"
)

// testdata/twonode is a hand-made two-socket host: node 0's 2 MiB pool
// (512 pages) is used up, node 1 has 384 of its 512 free and two free
// 1 GiB pages; node 0 has no 1 GiB page.
func TestReadNodePoolsTwoNode(t *testing.T) {
	got, err := ReadNodePools("testdata/twonode/sys")
	if err != nil {
		t.Fatal(err)
	}
	want := []NodePool{
		{Node: 0, PageSizeKB: 2048, Total: 512},
		{Node: 0, PageSizeKB: 1048576},
		{Node: 1, PageSizeKB: 2048, Total: 512, Free: 384},
		{Node: 1, PageSizeKB: 1048576, Total: 2, Free: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pools %+v\nwant %+v", got, want)
	}
	short := NodeShortages(got)
	if len(short) != 1 || short[0].PageSizeKB != 2048 || !reflect.DeepEqual(short[0].Empty, []int{0}) ||
		!reflect.DeepEqual(short[0].Free, map[int]uint64{1: 384}) {
		t.Fatalf("shortages %+v", short)
	}
	if s := short[0].String(); s != "2048 kB pages: node 0 exhausted (no free page) while node 1: 384 free" {
		t.Errorf("%q", s)
	}
}

func TestReadNodePoolsNoNUMA(t *testing.T) {
	got, err := ReadNodePools(t.TempDir())
	if err != nil || got != nil {
		t.Errorf("%+v, %v", got, err)
	}
}

func TestNodeShortagesNone(t *testing.T) {
	for _, pools := range [][]NodePool{
		nil,
		{{Node: 0, PageSizeKB: 2048, Total: 4, Free: 0}},                                                 // one node
		{{Node: 0, PageSizeKB: 2048, Total: 4, Free: 1}, {Node: 1, PageSizeKB: 2048, Total: 4, Free: 4}}, // both have
		{{Node: 0, PageSizeKB: 2048, Total: 0}, {Node: 1, PageSizeKB: 2048, Total: 4, Free: 4}},          // no pool on 0
		{{Node: 0, PageSizeKB: 2048, Total: 4}, {Node: 1, PageSizeKB: 1048576, Total: 1, Free: 1}},       // other size
	} {
		if s := NodeShortages(pools); len(s) != 0 {
			t.Errorf("%+v: %+v", pools, s)
		}
	}
}

func TestNodeID(t *testing.T) {
	for in, want := range map[string]int{"node0": 0, "node12": 12} {
		if got, ok := nodeID(in); !ok || got != want {
			t.Errorf("%s: %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"node", "nodes", "node-1", "node01", "possible", "node1x"} {
		if _, ok := nodeID(in); ok {
			t.Errorf("%s accepted", in)
		}
	}
}

func FuzzNodeShortages(f *testing.F) {
	f.Add(uint64(4), uint64(0), uint64(4), uint64(3))
	f.Fuzz(func(t *testing.T, t0, f0, t1, f1 uint64) {
		pools := []NodePool{{Node: 0, PageSizeKB: 2048, Total: t0, Free: f0}, {Node: 1, PageSizeKB: 2048, Total: t1, Free: f1}}
		for _, s := range NodeShortages(pools) {
			for _, n := range s.Empty {
				if _, free := s.Free[n]; free {
					t.Fatalf("node %d both empty and free: %+v", n, s)
				}
			}
			_ = s.String()
		}
	})
}
