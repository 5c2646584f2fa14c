package gfp

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/probe/rawbtf"
)

// errNoGFPEnum means the kernel predates the ___GFP_*_BIT enum (6.10):
// older kernels define the bits with #define, which BTF does not record.
var errNoGFPEnum = errors.New("kernel BTF has no ___GFP_*_BIT enum (GFP bits were #defines before 6.10)")

// gfpBit is one member of the anonymous ___GFP_*_BIT enum.
type gfpBit struct {
	name string // "DIRECT_RECLAIM" for ___GFP_DIRECT_RECLAIM_BIT
	bit  uint64
}

// gfpEnum finds the ___GFP_*_BIT enum and returns its members ordered by
// value, plus the raw constants for resolving them in a format file.
func gfpEnum(spec *btf.Spec, hint btf.TypeID) ([]gfpBit, map[string]uint64, error) {
	if spec == nil {
		return nil, nil, errors.New("no kernel BTF")
	}
	if id := hint; id != 0 {
		// A hint only: spec need not be the running kernel's.
		if typ, err := spec.TypeByID(id); err == nil {
			if e, ok := typ.(*btf.Enum); ok && hasValue(e, "___GFP_DMA_BIT") {
				bits, env := enumBits(e)
				return bits, env, nil
			}
		}
	}
	for typ, err := range spec.All() {
		if err != nil {
			return nil, nil, fmt.Errorf("reading kernel BTF: %w", err)
		}
		e, ok := typ.(*btf.Enum)
		if !ok || !hasValue(e, "___GFP_DMA_BIT") {
			continue
		}
		bits, env := enumBits(e)
		return bits, env, nil
	}
	return nil, nil, errNoGFPEnum
}

// kernelEnum holds the type ID of the ___GFP_*_BIT enum in the running
// kernel's BTF, read from its raw records (0: not found, or not readable
// this way). The enum is anonymous: spec.All() finds it only by inflating
// every type before it, ~10 ms and megabytes of garbage on each look-up.
// Callers that map the raw BTF anyway (the session, at start) find it
// with KernelEnum and pass it to LoadKernel; Load and FromBTF map it
// themselves on first use.
var kernelEnum struct {
	once sync.Once
	id   btf.TypeID
}

// KernelEnum returns the type ID of the ___GFP_*_BIT enum in raw, the
// running kernel's BTF (0: none), for LoadKernel.
func KernelEnum(raw *rawbtf.File) btf.TypeID {
	return btf.TypeID(raw.EnumWithValue("___GFP_DMA_BIT"))
}

func kernelGFPEnum() btf.TypeID {
	kernelEnum.once.Do(func() {
		if f, err := rawbtf.Map(rawbtf.KernelPath); err == nil {
			kernelEnum.id = KernelEnum(f)
			f.Close()
		}
	})
	return kernelEnum.id
}

// enumBits returns the enum's flag bits ordered by value, and every
// constant by name.
func enumBits(e *btf.Enum) ([]gfpBit, map[string]uint64) {
	env := map[string]uint64{}
	var out []gfpBit
	for _, v := range e.Values {
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
	sort.SliceStable(out, func(i, j int) bool { return out[i].bit < out[j].bit })
	return out, env
}

func hasValue(e *btf.Enum, name string) bool {
	for _, v := range e.Values {
		if v.Name == name {
			return true
		}
	}
	return false
}

// FromBTF builds a table from the kernel's ___GFP_*_BIT enum (6.10 and
// later). The single-bit names come straight from the enum; the composites
// (GFP_KERNEL, GFP_ATOMIC, ...) are macros the enum cannot carry, so they
// are rebuilt from the bits with the definitions of the newest kernel
// checked (6.18, where GFP_NOWAIT includes __GFP_NOWARN).
func FromBTF(spec *btf.Spec) (*Table, error) {
	return fromBTF(spec, kernelGFPEnum(), kver{})
}

// fromBTF is FromBTF for a known release: before 6.18, GFP_NOWAIT was
// __GFP_KSWAPD_RECLAIM alone. A zero release means the newest definitions.
func fromBTF(spec *btf.Spec, hint btf.TypeID, rel kver) (*Table, error) {
	members, _, err := gfpEnum(spec, hint)
	if err != nil {
		return nil, err
	}
	env := map[string]uint64{}
	var singles []Entry
	for _, m := range members {
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
