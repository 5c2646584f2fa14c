package sysstate

import (
	"math"
	"testing"

	"github.com/prometheus/procfs"
)

func TestMaxFreeOrder(t *testing.T) {
	for _, tc := range []struct {
		blocks []uint64
		want   int
	}{
		{nil, -1},
		{[]uint64{0, 0, 0}, -1},
		{[]uint64{5, 0, 0}, 0},
		{[]uint64{5, 0, 1, 0}, 2},
		{[]uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}, 10},
	} {
		if got := (ZoneFree{FreeBlocks: tc.blocks}).MaxFreeOrder(); got != tc.want {
			t.Errorf("MaxFreeOrder(%v) = %d, want %d", tc.blocks, got, tc.want)
		}
	}
}

func TestZoneFromBuddyFreePages(t *testing.T) {
	z, err := zoneFromBuddy(procfs.BuddyInfo{Node: "1", Zone: "Normal", Sizes: []float64{3, 2, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if z.FreePages != 3+2*2+1*4 || z.Node != 1 {
		t.Errorf("got %+v", z)
	}
}

func FuzzZoneFromBuddy(f *testing.F) {
	f.Add("0", 1.0, 2.0, 3.0)
	f.Add("x", -1.0, math.NaN(), math.Inf(1))
	f.Add("1", 0.5, 1e300, 9007199254740993.0)
	f.Fuzz(func(t *testing.T, node string, a, b, c float64) {
		sizes := []float64{a, b, c}
		for range 60 { // reach the high orders where shifts overflow
			sizes = append(sizes, c)
		}
		z, err := zoneFromBuddy(procfs.BuddyInfo{Node: node, Zone: "Normal", Sizes: sizes})
		if err != nil {
			return
		}
		var sum uint64
		for o, n := range z.FreeBlocks {
			sum += n << o
		}
		if sum != z.FreePages {
			t.Errorf("FreePages %d, blocks sum to %d", z.FreePages, sum)
		}
	})
}
