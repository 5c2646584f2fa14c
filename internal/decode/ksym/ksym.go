// Package ksym turns kernel addresses from stack traces into
// "function+0xoff [module]" using /proc/kallsyms.
//
// The table is loaded once (about 120k text symbols on a stock kernel) and
// kept small: one sorted []uint64 of addresses, and per symbol an offset
// into one string holding all names, a name length and a module index.
// Only text symbols (t, T, w, W) are kept: stacks point into code.
package ksym

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrHidden means kallsyms printed every address as zero. The kernel does
// that for everyone when kernel.kptr_restrict is 2, and for readers without
// CAP_SYSLOG when it is 1 — or when it is 0 but
// kernel.perf_event_paranoid is above 1 (the default, 2): kptr_restrict=0
// alone does not show addresses to a non-root user.
var ErrHidden = errors.New("kallsyms addresses are hidden (kptr_restrict); run as root")

// Symbol is where an address falls: Offset bytes into function Name of
// Module ("" for the kernel image itself).
type Symbol struct {
	Name   string `json:"name"`
	Offset uint64 `json:"offset"`
	Module string `json:"module,omitempty"`
}

// Format renders s the way kernel oopses do, without the function size
// kallsyms does not give: "tcp_v4_rcv+0x12", "nf_conntrack_in+0x4c
// [nf_conntrack]". A zero Symbol (an address no symbol covers) is "?".
func Format(s Symbol) string {
	if s.Name == "" {
		return "?"
	}
	out := s.Name + "+0x" + strconv.FormatUint(s.Offset, 16)
	if s.Module != "" {
		out += " [" + s.Module + "]"
	}
	return out
}

// Table is a loaded kallsyms. It is read-only after loading and safe for
// concurrent use.
type Table struct {
	addrs   []uint64 // sorted, unique
	nameOff []uint32 // into names
	nameLen []uint16 // KSYM_NAME_LEN is 512
	mod     []uint16 // into mods; 0 is the kernel image
	names   string
	mods    []string
	modEnd  []uint64 // by module index, 0 unknown (LoadModules)
}

// Len is the number of symbols kept.
func (t *Table) Len() int { return len(t.addrs) }

// Symbolize finds the symbol at or below addr. kallsyms has no sizes, so an
// address past the end of a function is given to that function with a
// large offset; ok is false below the first symbol, and past the end of a
// module when its extent is known (LoadModules).
func (t *Table) Symbolize(addr uint64) (Symbol, bool) {
	i, found := slices.BinarySearch(t.addrs, addr)
	if !found {
		i--
	}
	if i < 0 || t.beyondModule(i, addr) {
		return Symbol{}, false
	}
	off := t.nameOff[i]
	return Symbol{
		Name:   t.names[off : off+uint32(t.nameLen[i])],
		Offset: addr - t.addrs[i],
		Module: t.mods[t.mod[i]],
	}, true
}

// FormatAddr is Format(Symbolize(addr)), with the raw address when no
// symbol covers it.
func (t *Table) FormatAddr(addr uint64) string {
	s, ok := t.Symbolize(addr)
	if !ok {
		return fmt.Sprintf("0x%x", addr)
	}
	return Format(s)
}

// footprint is the memory the table keeps, for tests and benchmarks.
func (t *Table) footprint() int {
	n := cap(t.addrs)*8 + cap(t.modEnd)*8 + cap(t.nameOff)*4 + cap(t.nameLen)*2 + cap(t.mod)*2 + len(t.names)
	for _, m := range t.mods {
		n += len(m) + 16
	}
	return n
}
