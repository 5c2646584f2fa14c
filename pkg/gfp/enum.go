package gfp

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// EnumMember is one member of a C enum as kernel BTF records it (BTF
// readers sign-extend the values of signed enums).
type EnumMember struct {
	Name  string
	Value uint64
}

// EnumMarker is a member of the kernel's GFP bit enum, which is
// anonymous: a BTF reader finds the enum to pass to FromEnum and Load as
// the one that has a member of this name.
const EnumMarker = "___GFP_DMA_BIT"

// errNoGFPEnum means the kernel predates the ___GFP_*_BIT enum (6.10):
// older kernels define the bits with #define, which BTF does not record.
var errNoGFPEnum = errors.New("kernel BTF has no ___GFP_*_BIT enum (GFP bits were #defines before 6.10)")

// gfpBit is one member of the anonymous ___GFP_*_BIT enum.
type gfpBit struct {
	name string // "DIRECT_RECLAIM" for ___GFP_DIRECT_RECLAIM_BIT
	bit  uint64
}

// enumBits returns the flag bits of the GFP bit enum ordered by value,
// and every constant by name; errNoGFPEnum when members are not that
// enum's.
func enumBits(members []EnumMember) ([]gfpBit, map[string]uint64, error) {
	env := make(map[string]uint64, len(members))
	var out []gfpBit
	for _, v := range members {
		env[v.Name] = v.Value
		name, ok := strings.CutPrefix(v.Name, "___GFP_")
		if !ok {
			continue
		}
		name, ok = strings.CutSuffix(name, "_BIT")
		// UNUSED marks a hole and LAST counts the bits: neither is a flag.
		if !ok || name == "UNUSED" || name == "LAST" || v.Value >= 64 {
			continue
		}
		out = append(out, gfpBit{name, v.Value})
	}
	if _, ok := env[EnumMarker]; !ok {
		return nil, nil, errNoGFPEnum
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].bit < out[j].bit })
	return out, env, nil
}

// FromEnum builds a table from the members of the kernel's ___GFP_*_BIT
// enum (6.10 and later; see EnumMarker), read from kernel BTF. The
// single-bit names come straight from the enum; the composites
// (GFP_KERNEL, GFP_ATOMIC, ...) are macros the enum cannot carry, so they
// are rebuilt from the bits with the definitions of the newest kernel
// checked (6.18, where GFP_NOWAIT includes __GFP_NOWARN).
func FromEnum(members []EnumMember) (*Table, error) {
	return fromEnum(members, kver{})
}

// fromEnum is FromEnum for a known release: before 6.18, GFP_NOWAIT was
// __GFP_KSWAPD_RECLAIM alone. A zero release means the newest definitions.
func fromEnum(members []EnumMember, rel kver) (*Table, error) {
	bits, _, err := enumBits(members)
	if err != nil {
		return nil, err
	}
	env := map[string]uint64{}
	var singles []Entry
	for _, m := range bits {
		name := "__GFP_" + m.name
		env[name] = 1 << m.bit
		singles = append(singles, Entry{Mask: 1 << m.bit, Name: name})
	}
	for _, name := range []string{"DMA", "HIGHMEM", "DMA32", "MOVABLE", "HIGH", "IO", "FS",
		"DIRECT_RECLAIM", "KSWAPD_RECLAIM", "HARDWALL", "COMP", "NOMEMALLOC", "NOWARN", "ACCOUNT"} {
		if _, ok := env["__GFP_"+name]; !ok {
			return nil, fmt.Errorf("kernel BTF GFP enum lacks ___GFP_%s_BIT", name)
		}
	}
	// Flags compiled out of this kernel are 0 in the macros, as in C.
	for _, opt := range []string{"__GFP_ATOMIC", "__GFP_SKIP_KASAN"} {
		if _, ok := env[opt]; !ok {
			env[opt] = 0
		}
	}
	nowait := nowaitKswapd
	if rel == (kver{}) || !rel.less(kver{6, 18, 0}) {
		nowait = def{"GFP_NOWAIT", "__GFP_KSWAPD_RECLAIM | __GFP_NOWARN"}
	}
	ds := defs([]def{reclaimDef, {"GFP_ATOMIC", "__GFP_HIGH | __GFP_ATOMIC | __GFP_KSWAPD_RECLAIM"}, nowait},
		modernCommon, []def{highuserMovableKasan}, transhugeDefs)
	for _, d := range ds {
		toks, err := tokenize(d.expr)
		if err != nil {
			return nil, err
		}
		v, err := evalExpr(toks, env)
		if err != nil {
			return nil, fmt.Errorf("building %s from kernel BTF: %w", d.name, err)
		}
		env[d.name] = v
	}
	var entries []Entry
	for _, name := range strings.Fields(`GFP_TRANSHUGE GFP_TRANSHUGE_LIGHT GFP_HIGHUSER_MOVABLE
		GFP_HIGHUSER GFP_USER GFP_KERNEL_ACCOUNT GFP_KERNEL GFP_NOFS GFP_ATOMIC GFP_NOIO
		GFP_NOWAIT GFP_DMA GFP_DMA32 __GFP_RECLAIM`) {
		entries = append(entries, Entry{Mask: env[name], Name: name})
	}
	entries = append(entries, singles...)
	return newTable(entries, "|", "none", "kernel BTF"), nil
}

// withEnumBits adds to a table read from a format file the single bits of
// the GFP enum that it has no entry of their own for, after its entries,
// so that they are named instead of left as a hex number. A kernel's
// tracefs table may lag its enum: 6.12 has ___GFP_NO_OBJ_EXT_BIT (24)
// but prints __GFP_NO_OBJ_EXT as 0x1000000. The source says so.
func (t *Table) withEnumBits(bits []gfpBit) *Table {
	named := map[uint64]bool{}
	for _, e := range t.entries {
		named[e.Mask] = true
	}
	entries := t.Entries()
	var added []string
	for _, b := range bits {
		if m := uint64(1) << b.bit; !named[m] {
			entries = append(entries, Entry{Mask: m, Name: "__GFP_" + b.name})
			added = append(added, "__GFP_"+b.name)
		}
	}
	if len(added) == 0 {
		return t
	}
	source := fmt.Sprintf("%s (%s from kernel BTF)", t.source, strings.Join(added, ", "))
	return newTable(entries, t.delim, t.zero, source)
}
