// Package tracker turns the cumulative counters of in-kernel hash maps
// into growth per read, and says which owners (processes) went idle so
// their entries can be deleted from the kernel and from memory.
//
// The kernel side counts exactly, per key, and only ever adds; user space
// reads the whole map now and then. A Table remembers the last value of
// each key and returns what it added since. A Tracker holds the owners of
// the keys of one or more tables: the kernel deletes entries per owner
// (all the maps of a process at once), so idleness, the key bound and
// forgetting are per owner too. A table's keys must never be forgotten
// while the kernel still holds them, or their whole value would be
// counted again: whoever deletes an owner in the kernel calls Forget.
package tracker

import (
	"slices"
	"time"
)

// Value is what a key of a kernel map counts: one counter or a few that
// the kernel creates and deletes together.
type Value[V any] interface {
	comparable
	// Since returns the growth from prev to the receiver; ok is false
	// when any counter went backwards, which only happens when the kernel
	// deleted the entry and counted again from zero.
	Since(prev V) (growth V, ok bool)
}

// Count is a single cumulative counter.
type Count uint64

// Since implements Value.
func (c Count) Since(prev Count) (Count, bool) {
	if c < prev {
		return c, false
	}
	return c - prev, true
}

// Pair is two counters of one key, such as events and the part of them
// that split a pageblock. A reset of either is a reset of both: the
// kernel deletes the whole entry.
type Pair struct{ A, B uint64 }

// Since implements Value.
func (p Pair) Since(prev Pair) (Pair, bool) {
	if p.A < prev.A || p.B < prev.B {
		return p, false
	}
	return Pair{p.A - prev.A, p.B - prev.B}, true
}

// Tracker holds the owners of the keys of its tables: when each last
// grew, and how many keys it has. Its memory is bounded by the keys its
// tables hold, which a complete read keeps to those the kernel holds, and
// by MaxKeys when set. It is not safe for concurrent use.
type Tracker[O comparable] struct {
	// Idle is how long an owner may go without growth before Expired
	// returns it; 0 or less never expires an owner for idleness.
	Idle time.Duration
	// MaxKeys bounds the keys of all tables together: past it, Expired
	// also returns the owners idle longest until the rest fits. 0 or less
	// is no bound beyond the kernel maps' own.
	MaxKeys int
	// Evicted counts the owners forgotten to respect MaxKeys rather than
	// for idleness.
	Evicted uint64

	owners   map[O]*owner
	keys     int
	tables   []table[O]
	evicting map[O]bool
}

type owner struct {
	seen time.Time // last growth, or when its first key was read
	keys int
}

// table is what a Tracker needs of its tables, whatever their key type.
type table[O comparable] interface {
	forget(drop map[O]bool)
}

// New returns a tracker that expires owners idle longer than idle (0:
// never) and holds at most maxKeys keys (0: no bound).
func New[O comparable](idle time.Duration, maxKeys int) *Tracker[O] {
	return &Tracker[O]{Idle: idle, MaxKeys: maxKeys, owners: map[O]*owner{}, evicting: map[O]bool{}}
}

// Keys is the number of keys the tables hold.
func (t *Tracker[O]) Keys() int { return t.keys }

// Owners is the number of owners held.
func (t *Tracker[O]) Owners() int { return len(t.owners) }

// LastSeen is when an owner last grew, and whether it is held.
func (t *Tracker[O]) LastSeen(o O) (time.Time, bool) {
	if w := t.owners[o]; w != nil {
		return w.seen, true
	}
	return time.Time{}, false
}

// Expired returns the owners idle longer than Idle at now, then, while
// the other owners' keys exceed MaxKeys, those idle longest. It changes
// nothing: the caller deletes them in the kernel, then calls Forget (and
// can retry on the next read if deleting failed).
func (t *Tracker[O]) Expired(now time.Time) []O {
	clear(t.evicting)
	var out []O
	kept := t.keys
	var rest []O
	for o, w := range t.owners {
		if t.Idle > 0 && now.Sub(w.seen) > t.Idle {
			out = append(out, o)
			kept -= w.keys
		} else if t.MaxKeys > 0 && w.keys > 0 {
			rest = append(rest, o)
		}
	}
	if t.MaxKeys <= 0 || kept <= t.MaxKeys {
		return out
	}
	slices.SortFunc(rest, func(a, b O) int { return t.owners[a].seen.Compare(t.owners[b].seen) })
	for _, o := range rest {
		if kept <= t.MaxKeys {
			break
		}
		out = append(out, o)
		kept -= t.owners[o].keys
		t.evicting[o] = true
	}
	return out
}

// Forget drops owners and all their keys in every table: call it once
// their entries are gone from the kernel, so that if they come back they
// count from zero.
func (t *Tracker[O]) Forget(owners []O) {
	if len(owners) == 0 {
		return
	}
	drop := make(map[O]bool, len(owners))
	for _, o := range owners {
		if t.owners[o] == nil {
			continue
		}
		drop[o] = true
		if t.evicting[o] {
			t.Evicted++
		}
	}
	for _, tb := range t.tables {
		tb.forget(drop)
	}
	for o := range drop {
		t.keys -= t.owners[o].keys
		delete(t.owners, o)
	}
	clear(t.evicting)
}

// seen records a key of o: it grew (or appeared) at now when grew is set.
func (t *Tracker[O]) seen(o O, now time.Time, grew, added bool) {
	w := t.owners[o]
	if w == nil {
		w = &owner{seen: now}
		t.owners[o] = w
	}
	if grew {
		w.seen = now
	}
	if added {
		w.keys++
		t.keys++
	}
}

// removed records that a key of o is gone. An owner left without keys is
// kept until it expires, so the caller learns it went idle; with no Idle
// it would never expire, and is dropped at once.
func (t *Tracker[O]) removed(o O) {
	w := t.owners[o]
	w.keys--
	t.keys--
	if w.keys == 0 && t.Idle <= 0 {
		delete(t.owners, o)
	}
}

// Table turns one kernel map's cumulative values into growth per key.
type Table[K comparable, V Value[V], O comparable] struct {
	tr    *Tracker[O]
	owner func(K) O
	last  map[K]entry[V]
	gen   uint64 // current read; keys not added in it are gone
}

type entry[V any] struct {
	v   V
	gen uint64
}

// NewTable returns a table whose keys belong to owner(key) in tr.
func NewTable[V Value[V], K comparable, O comparable](tr *Tracker[O], owner func(K) O) *Table[K, V, O] {
	tb := &Table[K, V, O]{tr: tr, owner: owner, last: map[K]entry[V]{}}
	tr.tables = append(tr.tables, tb)
	return tb
}

// Len is the number of keys the table holds.
func (tb *Table[K, V, O]) Len() int { return len(tb.last) }

// Add records that key k holds v at now, and returns what it added since
// the last read: all of v for a new key or one the kernel recreated (a
// counter that went backwards), never a negative growth. Growth, and a
// new key, count as activity of the key's owner.
func (tb *Table[K, V, O]) Add(now time.Time, k K, v V) V {
	e, held := tb.last[k]
	growth := v
	if held {
		if g, ok := v.Since(e.v); ok {
			growth = g
		}
	}
	tb.last[k] = entry[V]{v: v, gen: tb.gen}
	var zero V
	tb.tr.seen(tb.owner(k), now, growth != zero || !held, !held)
	return growth
}

// Sweep ends a read: keys not added since the last Sweep are forgotten,
// as the kernel no longer holds them; if they come back they count from
// zero. Call it only after a complete read of the map, never after a
// failed one, or every key would count its whole value again.
func (tb *Table[K, V, O]) Sweep() {
	for k, e := range tb.last {
		if e.gen != tb.gen {
			delete(tb.last, k)
			tb.tr.removed(tb.owner(k))
		}
	}
	tb.gen++
}

func (tb *Table[K, V, O]) forget(drop map[O]bool) {
	for k := range tb.last {
		if drop[tb.owner(k)] {
			delete(tb.last, k)
		}
	}
}
