package tracker

import (
	"slices"
	"testing"
	"time"
)

type key struct {
	pid   uint32
	stack int32
}

func pidOf(k key) uint32 { return k.pid }

var t0 = time.Unix(1000, 0)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// read is one complete read of a kernel map.
type read map[key]Count

// TestTableGrowth: each read gives what every key added since the last
// one, whatever happened to the key in the kernel in between.
func TestTableGrowth(t *testing.T) {
	a, b := key{1, 7}, key{2, 7}
	cases := []struct {
		name  string
		reads []read
		want  []read // growth per read; keys without growth are 0
	}{
		{"new keys count whole", []read{{a: 5, b: 0}}, []read{{a: 5, b: 0}}},
		{"growth", []read{{a: 5}, {a: 9}, {a: 9}}, []read{{a: 5}, {a: 4}, {a: 0}}},
		{"went backwards: recreated, counts from zero", []read{{a: 50}, {a: 3}, {a: 4}}, []read{{a: 50}, {a: 3}, {a: 1}}},
		{"gone then back larger: counts from zero", []read{{a: 5, b: 1}, {b: 1}, {a: 8, b: 1}}, []read{{a: 5, b: 1}, {b: 0}, {a: 8, b: 0}}},
		{"independent keys", []read{{a: 1, b: 10}, {a: 2, b: 30}}, []read{{a: 1, b: 10}, {a: 1, b: 20}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := NewTable[Count](New[uint32](0, 0), pidOf)
			for i, r := range c.reads {
				for k, v := range r {
					if got := tb.Add(at(i), k, v); got != c.want[i][k] {
						t.Errorf("read %d key %v: growth %d, want %d", i, k, got, c.want[i][k])
					}
				}
				tb.Sweep()
				if tb.Len() != len(r) {
					t.Errorf("read %d: %d keys held, want the %d read", i, tb.Len(), len(r))
				}
			}
		})
	}
}

func TestValueSince(t *testing.T) {
	cases := []struct {
		cur, prev Pair
		want      Pair
		ok        bool
	}{
		{Pair{5, 2}, Pair{0, 0}, Pair{5, 2}, true},
		{Pair{9, 2}, Pair{5, 2}, Pair{4, 0}, true},
		{Pair{3, 1}, Pair{9, 2}, Pair{3, 1}, false},   // entry recreated
		{Pair{12, 0}, Pair{9, 2}, Pair{12, 0}, false}, // one counter back is a reset of both
	}
	for _, c := range cases {
		if got, ok := c.cur.Since(c.prev); got != c.want || ok != c.ok {
			t.Errorf("%v.Since(%v) = %v, %v; want %v, %v", c.cur, c.prev, got, ok, c.want, c.ok)
		}
	}
	if got, ok := Count(3).Since(7); got != 3 || ok {
		t.Errorf("Count(3).Since(7) = %d, %v", got, ok)
	}
}

// TestIdleOwnersExpire: an owner expires when none of its keys, in any
// table, grew for longer than Idle; forgetting it drops all its keys, so
// that when the kernel counts it again from zero nothing is lost.
func TestIdleOwnersExpire(t *testing.T) {
	tr := New[uint32](time.Minute, 0)
	alloc := NewTable[Count](tr, pidOf)
	frag := NewTable[Pair](tr, func(k key) uint32 { return k.pid })
	step := func(s int, al read, fr map[key]Pair) {
		for k, v := range al {
			alloc.Add(at(s), k, v)
		}
		alloc.Sweep()
		for k, v := range fr {
			frag.Add(at(s), k, v)
		}
		frag.Sweep()
	}
	step(0, read{{10, 1}: 1, {11, 1}: 1}, map[key]Pair{{10, 0}: {1, 0}, {12, 0}: {1, 1}})
	step(50, read{{10, 1}: 1, {11, 1}: 2}, map[key]Pair{{10, 0}: {1, 0}, {12, 0}: {1, 1}})
	if got := tr.Expired(at(60)); len(got) != 0 {
		t.Fatalf("expired at exactly Idle: %v", got)
	}
	step(70, read{{10, 1}: 1, {11, 1}: 2}, map[key]Pair{{10, 0}: {1, 0}, {12, 0}: {3, 1}}) // 12 grows in frag only
	got := tr.Expired(at(70))
	slices.Sort(got)
	if !slices.Equal(got, []uint32{10}) {
		t.Fatalf("expired %v, want [10]", got)
	}
	if tr.Keys() != 4 {
		t.Errorf("Expired changed the keys: %d", tr.Keys())
	}
	tr.Forget(got)
	if tr.Keys() != 2 || alloc.Len() != 1 || frag.Len() != 1 || tr.Owners() != 2 || tr.Evicted != 0 {
		t.Errorf("after forgetting 10: keys %d alloc %d frag %d owners %d evicted %d", tr.Keys(), alloc.Len(), frag.Len(), tr.Owners(), tr.Evicted)
	}
	// The kernel deleted 10's entries too; it comes back with 2 new.
	if g := alloc.Add(at(80), key{10, 1}, 2); g != 2 {
		t.Errorf("come-back growth %d, want 2", g)
	}
	if seen, ok := tr.LastSeen(10); !ok || !seen.Equal(at(80)) {
		t.Errorf("last seen %v %v", seen, ok)
	}
}

// TestOwnerWithoutKeys: an owner whose keys the kernel dropped still
// expires (so the caller drops its rows); without Idle it is dropped at
// once, so memory stays bounded.
func TestOwnerWithoutKeys(t *testing.T) {
	for _, idle := range []time.Duration{0, time.Minute} {
		tr := New[uint32](idle, 0)
		tb := NewTable[Count](tr, pidOf)
		tb.Add(at(0), key{1, 0}, 1)
		tb.Sweep()
		tb.Sweep() // read with the key gone
		switch {
		case idle == 0 && tr.Owners() != 0:
			t.Errorf("idle 0: %d owners kept", tr.Owners())
		case idle > 0 && !slices.Equal(tr.Expired(at(61)), []uint32{1}):
			t.Errorf("idle %v: owner without keys did not expire", idle)
		}
		if tr.Keys() != 0 {
			t.Errorf("keys %d", tr.Keys())
		}
	}
}

// TestMaxKeysEvictsOldestIdle: past MaxKeys, the owners idle longest go
// first, only as many as needed, and are counted.
func TestMaxKeysEvictsOldestIdle(t *testing.T) {
	tr := New[uint32](0, 4)
	tb := NewTable[Count](tr, pidOf)
	// Owner p grows last at second p; owner 3 has two keys.
	for _, s := range []int{1, 2, 3, 4} {
		tb.Add(at(s), key{uint32(s), 0}, 1)
	}
	tb.Add(at(3), key{3, 1}, 1)
	tb.Add(at(9), key{1, 0}, 5) // 1 grows again: now the most recent
	got := tr.Expired(at(10))
	if !slices.Equal(got, []uint32{2}) {
		t.Fatalf("evicting %v, want [2] (idle longest; one key over)", got)
	}
	tr.Forget(got)
	if tr.Evicted != 1 || tr.Keys() != 4 || tb.Len() != 4 {
		t.Errorf("evicted %d keys %d len %d", tr.Evicted, tr.Keys(), tb.Len())
	}
	tb.Add(at(11), key{5, 0}, 1)
	tb.Add(at(11), key{6, 0}, 1)
	// Six keys: owner 3, idle longest now, holds two, enough to fit.
	if got = tr.Expired(at(12)); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("evicting %v, want [3]", got)
	}
	// The caller failed to delete 3 in the kernel: it is asked again,
	// and counted once, when forgotten.
	if got = tr.Expired(at(13)); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("evicting %v on retry, want [3]", got)
	}
	tr.Forget(got)
	if tr.Evicted != 2 || tr.Keys() != 4 {
		t.Errorf("evicted %d keys %d, want 2 and 4", tr.Evicted, tr.Keys())
	}
	if got := tr.Expired(at(14)); len(got) != 0 {
		t.Errorf("at the bound, evicting %v", got)
	}
}

// FuzzSumOfGrowth: without resets, the growth a table returns over any
// sequence of reads sums, per key, to the key's final value; with resets
// that a read sees (an entry deleted, then counting from zero), to all
// the kernel counted.
func FuzzSumOfGrowth(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0xff, 4, 5}, false)
	f.Add([]byte{9, 9, 0x80, 9, 0xff, 9}, true)
	f.Fuzz(func(t *testing.T, ops []byte, resets bool) {
		tr := New[uint32](0, 0)
		tb := NewTable[Count](tr, pidOf)
		kernel := map[key]Count{}
		counted := map[key]Count{} // all the kernel added, per key
		summed := map[key]Count{}
		snapshot := func(s int) {
			for k, v := range kernel {
				summed[k] += tb.Add(at(s), k, v)
			}
			tb.Sweep()
		}
		for i, op := range ops {
			k := key{uint32(op % 4), int32(op>>2) % 2}
			switch {
			case op == 0xff:
				snapshot(i)
			case op&0x80 != 0 && resets:
				// As ForgetPids does: a read, the delete, and a read that
				// sees the key gone.
				snapshot(i)
				delete(kernel, k)
				snapshot(i)
			default:
				n := Count(op>>3) + 1
				kernel[k] += n
				counted[k] += n
			}
		}
		snapshot(len(ops))
		for k, n := range counted {
			if summed[k] != n {
				t.Errorf("key %v: growth sums to %d, kernel counted %d", k, summed[k], n)
			}
			if !resets && summed[k] != kernel[k] {
				t.Errorf("key %v: growth sums to %d, final value %d", k, summed[k], kernel[k])
			}
		}
		if tr.Keys() != len(kernel) || tb.Len() != len(kernel) {
			t.Errorf("holding %d keys (%d in the table), kernel %d", tr.Keys(), tb.Len(), len(kernel))
		}
	})
}
