// Package gfp names kernel GFP (get free pages) allocation flags the way a
// given kernel does. It is a public library API of memtrace, for any
// program that decodes GFP masks: from tracepoints, kernel logs or BPF.
//
// The bit values behind the names changed many times: GFP_ATOMIC is 0x20 on
// 2.6.32 and 3.10, 0x480020 on 4.18, 0xa20 on 5.x and 0x820 since 6.3. A
// Table therefore comes from the kernel itself when possible, and from
// built-in tables, keyed by release, for logs of other hosts:
//
//   - FromFormat: the print fmt of the mm_page_alloc tracepoint (tracefs),
//     exactly what the kernel prints;
//   - FromEnum: the members of the ___GFP_*_BIT enum (kernel BTF, 6.10
//     and later), which the caller reads with its own BTF reader;
//   - ForRelease: the built-in table for a kernel release;
//   - Load: the first of these that works for the running kernel, a
//     format file's table completed with the enum's bits it lacks.
//
// The package reads no BTF itself and has no dependency outside the
// standard library. Decoding reproduces the kernel's __print_flags / %pGg
// algorithm, so the names match what dmesg and ftrace print.
package gfp

import (
	"fmt"
	"math/bits"
	"strings"
)

// Entry is one {mask, name} pair of the kernel's flag name array.
type Entry struct {
	Mask uint64
	Name string
}

// Table holds the kernel's GFP flag names in the kernel's print order:
// composites first (GFP_TRANSHUGE ... GFP_NOWAIT), then single bits.
type Table struct {
	entries []Entry
	delim   string // separator between names, "|" for GFP flags
	zero    string // what the kernel prints for a zero mask
	source  string
	bits    map[string]uint64 // single-bit names, see Bit
}

// Allocation classes returned by Table.Class.
const (
	ClassAtomic = "atomic" // cannot sleep, may dip into reserves (__GFP_HIGH)
	ClassNowait = "nowait" // cannot sleep, no reserves
	ClassKernel = "kernel" // may reclaim, do IO and call into filesystems
	ClassUser   = "user"   // may reclaim, bound to the cpuset (__GFP_HARDWALL)
	ClassOther  = "other"  // may reclaim but restricted (GFP_NOIO, GFP_NOFS, ...)
)

func newTable(entries []Entry, delim, zero, source string) *Table {
	if delim == "" {
		delim = "|"
	}
	if zero == "" {
		zero = "none"
	}
	t := &Table{entries: entries, delim: delim, zero: zero, source: source, bits: map[string]uint64{}}
	for _, e := range entries {
		if bits.OnesCount64(e.Mask) != 1 || compositeNames[e.Name] {
			continue
		}
		if _, dup := t.bits[e.Name]; !dup {
			t.bits[e.Name] = e.Mask
		}
	}
	// 2.6.32 and 3.x printed single bits without the leading "__"
	// ("GFP_WAIT" for __GFP_WAIT); register the kernel-source spelling too
	// so callers can ask for "__GFP_HIGH" on every version.
	for name, m := range t.bits {
		if strings.HasPrefix(name, "GFP_") {
			if _, dup := t.bits["__"+name]; !dup {
				t.bits["__"+name] = m
			}
		}
	}
	// Some kernels print no entry for a bit that composites use (2.6.32
	// has no "GFP_FS"); recover it as the difference of two composites.
	for _, d := range derivedBits {
		if _, known := t.bits[d.name]; known {
			continue
		}
		a, okA := t.entry(d.with)
		b, okB := t.entry(d.without)
		if okA && okB && a&b == b && bits.OnesCount64(a&^b) == 1 {
			t.bits[d.name] = a &^ b
		}
	}
	return t
}

// compositeNames are the GFP_* combinations. Some of them are a single bit
// on old kernels (GFP_ATOMIC was just __GFP_HIGH on 2.6.32), which must not
// make them look like flags of their own. GFP_DMA and GFP_DMA32 are left
// out: they are plain aliases of __GFP_DMA and __GFP_DMA32.
var compositeNames = map[string]bool{
	"GFP_ATOMIC": true, "GFP_KERNEL": true, "GFP_KERNEL_ACCOUNT": true, "GFP_NOWAIT": true,
	"GFP_NOIO": true, "GFP_NOFS": true, "GFP_USER": true, "GFP_HIGHUSER": true,
	"GFP_HIGHUSER_MOVABLE": true, "GFP_TRANSHUGE": true, "GFP_TRANSHUGE_LIGHT": true,
	"GFP_TEMPORARY": true, "GFP_IOFS": true, "GFP_THISNODE": true,
}

// derivedBits says how to find a bit from two composites that differ by it.
var derivedBits = []struct{ name, with, without string }{
	{"__GFP_FS", "GFP_KERNEL", "GFP_NOFS"},
	{"__GFP_IO", "GFP_NOFS", "GFP_NOIO"},
	{"__GFP_HARDWALL", "GFP_USER", "GFP_KERNEL"},
	{"__GFP_HIGHMEM", "GFP_HIGHUSER", "GFP_USER"},
	{"__GFP_MOVABLE", "GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER"},
}

// entry returns the mask of the first entry with that name.
func (t *Table) entry(name string) (uint64, bool) {
	for _, e := range t.entries {
		if e.Name == name {
			return e.Mask, true
		}
	}
	return 0, false
}

// Source tells where the table came from, e.g. "tracefs format",
// "kernel BTF" or "built-in table for 6.8".
func (t *Table) Source() string { return t.source }

// Entries returns a copy of the name array in print order.
func (t *Table) Entries() []Entry { return append([]Entry(nil), t.entries...) }

// Names decodes flags with the kernel's greedy algorithm: walk the entries
// in order and, whenever all bits of an entry's mask are still set, emit its
// name and clear those bits. Bits no entry covers come last as one hex
// number ("0x4000000"). Names(0) is empty.
//
// Like the kernel, an entry whose mask is 0 matches any non-zero value; old
// kernels had such entries when a flag was compiled out.
func (t *Table) Names(flags uint64) []string {
	var out []string
	for _, e := range t.entries {
		if flags == 0 {
			break
		}
		if flags&e.Mask != e.Mask {
			continue
		}
		flags &^= e.Mask
		out = append(out, e.Name)
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("%#x", flags))
	}
	return out
}

// String is Names joined by "|", or the kernel's text for 0 ("none"; the
// 2.6.32 and 3.x tracepoints printed "GFP_NOWAIT").
func (t *Table) String(flags uint64) string {
	if flags == 0 {
		return t.zero
	}
	return strings.Join(t.Names(flags), t.delim)
}

// Bit returns the value of a single-bit flag such as "__GFP_HIGH". Names
// are looked up as the kernel prints them, and "__GFP_X" also finds the
// "GFP_X" spelling of old kernels.
func (t *Table) Bit(name string) (uint64, bool) {
	m, ok := t.bits[name]
	return m, ok
}

// sleepBit is the flag that allows the allocator to block: __GFP_DIRECT_RECLAIM
// since 4.4, __GFP_WAIT before.
func (t *Table) sleepBit() (uint64, bool) {
	if m, ok := t.Bit("__GFP_DIRECT_RECLAIM"); ok {
		return m, true
	}
	return t.Bit("__GFP_WAIT")
}

// Atomic reports whether the request may not sleep, i.e. cannot enter direct
// reclaim or compaction. It is false when the table knows no sleep bit.
func (t *Table) Atomic(flags uint64) bool {
	m, ok := t.sleepBit()
	return ok && flags&m == 0
}

// Class sorts a request into one of ClassAtomic, ClassNowait, ClassKernel,
// ClassUser or ClassOther.
func (t *Table) Class(flags uint64) string {
	sleep, ok := t.sleepBit()
	if !ok {
		return ClassOther
	}
	has := func(name string) bool {
		m, ok := t.Bit(name)
		return ok && flags&m != 0
	}
	if flags&sleep == 0 {
		if has("__GFP_HIGH") {
			return ClassAtomic
		}
		return ClassNowait
	}
	if has("__GFP_HARDWALL") {
		return ClassUser
	}
	if has("__GFP_IO") && has("__GFP_FS") {
		return ClassKernel
	}
	return ClassOther
}
