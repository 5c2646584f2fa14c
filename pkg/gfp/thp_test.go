package gfp

import "testing"

func TestTHPFault(t *testing.T) {
	for _, release := range []string{"6.18.0", "6.1.0", "5.10.0", "4.19.0", "3.10.0"} {
		tab, err := ForRelease(release)
		if err != nil {
			t.Fatal(err)
		}
		mask := func(names ...string) uint64 {
			var m uint64
			for _, n := range names {
				v, ok := tab.entry(n)
				if !ok {
					v, ok = tab.Bit(n)
				}
				if !ok {
					t.Fatalf("%s: no %s", release, n)
				}
				m |= v
			}
			return m
		}
		kswapd := "__GFP_KSWAPD_RECLAIM"
		if _, ok := tab.Bit(kswapd); !ok {
			kswapd = "__GFP_NO_KSWAPD" // before 4.4
		}
		for _, tc := range []struct {
			names []string
			want  bool
		}{
			{[]string{"GFP_TRANSHUGE"}, true},
			{[]string{"GFP_TRANSHUGE", "__GFP_NORETRY"}, true},
			{[]string{"GFP_KERNEL"}, false},
			{[]string{"GFP_HIGHUSER_MOVABLE", "__GFP_COMP"}, false},
			{[]string{"GFP_TRANSHUGE", "__GFP_ZERO"}, false},
			{[]string{"GFP_ATOMIC"}, false},
		} {
			if got := tab.THPFault(mask(tc.names...)); got != tc.want {
				t.Errorf("%s: THPFault(%v) = %v, want %v", release, tc.names, got, tc.want)
			}
		}
		if _, ok := tab.Bit("__GFP_THISNODE"); ok && !tab.THPFault(mask("GFP_TRANSHUGE", "__GFP_THISNODE")) {
			t.Errorf("%s: a THP fault on one node is not matched", release)
		}
		if _, ok := tab.entry("GFP_TRANSHUGE_LIGHT"); ok {
			for _, extra := range [][]string{nil, {kswapd}} {
				names := append([]string{"GFP_TRANSHUGE_LIGHT"}, extra...)
				if !tab.THPFault(mask(names...)) {
					t.Errorf("%s: THPFault(%v) = false", release, names)
				}
			}
		}
	}
}
