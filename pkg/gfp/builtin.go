package gfp

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// A layout describes the GFP flags of a range of kernel releases the way the
// kernel sources do: the ___GFP_* bit values, the composite macros built from
// them, and the order of the names in show_gfp_flags()/__def_gfpflag_names.
// The facts come from include/linux/gfp.h (gfp_types.h since 6.0) and
// include/trace/events/{kmem,gfpflags,mmflags}.h of the named version, for a
// typical x86-64 distribution config: no KASAN_HW_TAGS, no LOCKDEP, no
// KMEMCHECK, memcg enabled (which enables SLAB_OBJ_EXT on 6.10+).
type layout struct {
	name  string // the version whose sources were checked
	since kver   // first release the layout applies to
	until kver   // first release it does not apply to; zero = open
	zero  string // what the tracepoint printed for 0
	bits  string // "__GFP_X=value ..."
	defs  []def  // composite macros, in dependency order
	order string // print order; "NAME" or "PRINTED=MACRO"
	note  string // caveat for ranges wider than the checked version
}

type def struct{ name, expr string }

// Composite macros shared by the 4.x-6.x layouts.
var (
	reclaimDef   = def{"__GFP_RECLAIM", "__GFP_DIRECT_RECLAIM|__GFP_KSWAPD_RECLAIM"}
	modernCommon = []def{
		{"GFP_KERNEL", "__GFP_RECLAIM | __GFP_IO | __GFP_FS"},
		{"GFP_KERNEL_ACCOUNT", "GFP_KERNEL | __GFP_ACCOUNT"},
		{"GFP_NOIO", "__GFP_RECLAIM"},
		{"GFP_NOFS", "__GFP_RECLAIM | __GFP_IO"},
		{"GFP_USER", "__GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL"},
		{"GFP_DMA", "__GFP_DMA"},
		{"GFP_DMA32", "__GFP_DMA32"},
		{"GFP_HIGHUSER", "GFP_USER | __GFP_HIGHMEM"},
	}
	transhugeDefs = []def{
		{"GFP_TRANSHUGE_LIGHT", "(GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM"},
		{"GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM"},
	}
)

func defs(groups ...[]def) []def {
	var out []def
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// Print order of 4.15 to 6.2 (mmflags.h __def_gfpflag_names).
const order415 = `GFP_TRANSHUGE GFP_TRANSHUGE_LIGHT GFP_HIGHUSER_MOVABLE GFP_HIGHUSER GFP_USER
	GFP_KERNEL_ACCOUNT GFP_KERNEL GFP_NOFS GFP_ATOMIC GFP_NOIO GFP_NOWAIT GFP_DMA __GFP_HIGHMEM
	GFP_DMA32 __GFP_HIGH __GFP_ATOMIC __GFP_IO __GFP_FS __GFP_NOWARN __GFP_RETRY_MAYFAIL
	__GFP_NOFAIL __GFP_NORETRY __GFP_COMP __GFP_ZERO __GFP_NOMEMALLOC __GFP_MEMALLOC
	__GFP_HARDWALL __GFP_THISNODE __GFP_RECLAIMABLE __GFP_MOVABLE __GFP_ACCOUNT __GFP_WRITE
	__GFP_RECLAIM __GFP_DIRECT_RECLAIM __GFP_KSWAPD_RECLAIM`

// Print order since the list was generated from the ___GFP_*_BIT enum
// (TRACE_GFP_FLAGS, 6.14): composites, then every bit in enum order.
const order614 = `GFP_TRANSHUGE GFP_TRANSHUGE_LIGHT GFP_HIGHUSER_MOVABLE GFP_HIGHUSER GFP_USER
	GFP_KERNEL_ACCOUNT GFP_KERNEL GFP_NOFS GFP_ATOMIC GFP_NOIO GFP_NOWAIT GFP_DMA GFP_DMA32
	__GFP_RECLAIM __GFP_DMA __GFP_HIGHMEM __GFP_DMA32 __GFP_MOVABLE __GFP_RECLAIMABLE
	__GFP_HIGH __GFP_IO __GFP_FS __GFP_ZERO __GFP_DIRECT_RECLAIM __GFP_KSWAPD_RECLAIM
	__GFP_WRITE __GFP_NOWARN __GFP_RETRY_MAYFAIL __GFP_NOFAIL __GFP_NORETRY __GFP_MEMALLOC
	__GFP_COMP __GFP_NOMEMALLOC __GFP_HARDWALL __GFP_THISNODE __GFP_ACCOUNT __GFP_ZEROTAGS
	__GFP_NO_OBJ_EXT`

// Bit values of 5.1 to 6.2 (after "mm: shuffle GFP_* flags"), up to
// __GFP_ACCOUNT.
const bits51 = `__GFP_DMA=0x01 __GFP_HIGHMEM=0x02 __GFP_DMA32=0x04 __GFP_MOVABLE=0x08
	__GFP_RECLAIMABLE=0x10 __GFP_HIGH=0x20 __GFP_IO=0x40 __GFP_FS=0x80 __GFP_ZERO=0x100
	__GFP_ATOMIC=0x200 __GFP_DIRECT_RECLAIM=0x400 __GFP_KSWAPD_RECLAIM=0x800 __GFP_WRITE=0x1000
	__GFP_NOWARN=0x2000 __GFP_RETRY_MAYFAIL=0x4000 __GFP_NOFAIL=0x8000 __GFP_NORETRY=0x10000
	__GFP_MEMALLOC=0x20000 __GFP_COMP=0x40000 __GFP_NOMEMALLOC=0x80000 __GFP_HARDWALL=0x100000
	__GFP_THISNODE=0x200000 __GFP_ACCOUNT=0x400000`

// Bit values since __GFP_ATOMIC was dropped (6.3); 0x200 stays unused.
const bits63 = `__GFP_DMA=0x01 __GFP_HIGHMEM=0x02 __GFP_DMA32=0x04 __GFP_MOVABLE=0x08
	__GFP_RECLAIMABLE=0x10 __GFP_HIGH=0x20 __GFP_IO=0x40 __GFP_FS=0x80 __GFP_ZERO=0x100
	__GFP_DIRECT_RECLAIM=0x400 __GFP_KSWAPD_RECLAIM=0x800 __GFP_WRITE=0x1000
	__GFP_NOWARN=0x2000 __GFP_RETRY_MAYFAIL=0x4000 __GFP_NOFAIL=0x8000 __GFP_NORETRY=0x10000
	__GFP_MEMALLOC=0x20000 __GFP_COMP=0x40000 __GFP_NOMEMALLOC=0x80000 __GFP_HARDWALL=0x100000
	__GFP_THISNODE=0x200000 __GFP_ACCOUNT=0x400000 __GFP_ZEROTAGS=0x800000
	__GFP_SKIP_ZERO=0 __GFP_SKIP_KASAN=0`

var layouts = []layout{
	{
		name: "2.6.32", since: kver{2, 6, 32}, until: kver{2, 6, 38}, zero: "GFP_NOWAIT",
		bits: `__GFP_DMA=0x01 __GFP_HIGHMEM=0x02 __GFP_DMA32=0x04 __GFP_MOVABLE=0x08
			__GFP_WAIT=0x10 __GFP_HIGH=0x20 __GFP_IO=0x40 __GFP_FS=0x80 __GFP_COLD=0x100
			__GFP_NOWARN=0x200 __GFP_REPEAT=0x400 __GFP_NOFAIL=0x800 __GFP_NORETRY=0x1000
			__GFP_COMP=0x4000 __GFP_ZERO=0x8000 __GFP_NOMEMALLOC=0x10000 __GFP_HARDWALL=0x20000
			__GFP_THISNODE=0x40000 __GFP_RECLAIMABLE=0x80000`,
		defs: oldDefs,
		// The kmem.h list of 2.6.32 has no entry for __GFP_FS, __GFP_DMA*
		// or __GFP_HIGHMEM: those bits only ever print inside composites
		// or as leftover hex.
		order: `GFP_HIGHUSER_MOVABLE GFP_HIGHUSER GFP_USER GFP_TEMPORARY GFP_KERNEL GFP_NOFS
			GFP_ATOMIC GFP_NOIO GFP_HIGH GFP_WAIT GFP_IO GFP_COLD GFP_NOWARN GFP_REPEAT
			GFP_NOFAIL GFP_NORETRY GFP_COMP GFP_ZERO GFP_NOMEMALLOC GFP_HARDWALL GFP_THISNODE
			GFP_RECLAIMABLE GFP_MOVABLE`,
		note: "RHEL 6 kernels backport THP flags (GFP_TRANSHUGE, __GFP_NO_KSWAPD) into higher bits",
	},
	{
		name: "3.10", since: kver{2, 6, 38}, until: kver{4, 4, 0}, zero: "GFP_NOWAIT",
		bits: `__GFP_DMA=0x01 __GFP_HIGHMEM=0x02 __GFP_DMA32=0x04 __GFP_MOVABLE=0x08
			__GFP_WAIT=0x10 __GFP_HIGH=0x20 __GFP_IO=0x40 __GFP_FS=0x80 __GFP_COLD=0x100
			__GFP_NOWARN=0x200 __GFP_REPEAT=0x400 __GFP_NOFAIL=0x800 __GFP_NORETRY=0x1000
			__GFP_MEMALLOC=0x2000 __GFP_COMP=0x4000 __GFP_ZERO=0x8000 __GFP_NOMEMALLOC=0x10000
			__GFP_HARDWALL=0x20000 __GFP_THISNODE=0x40000 __GFP_RECLAIMABLE=0x80000
			__GFP_KMEMCG=0x100000 __GFP_NOTRACK=0x200000 __GFP_NO_KSWAPD=0x400000
			__GFP_OTHER_NODE=0x800000 __GFP_WRITE=0x1000000`,
		defs: defs(oldDefs, []def{
			{"GFP_IOFS", "__GFP_IO | __GFP_FS"},
			{"GFP_TRANSHUGE", "GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN | __GFP_NO_KSWAPD"},
		}),
		order: `GFP_TRANSHUGE GFP_HIGHUSER_MOVABLE GFP_HIGHUSER GFP_USER GFP_TEMPORARY GFP_KERNEL
			GFP_NOFS GFP_ATOMIC GFP_NOIO GFP_HIGH GFP_WAIT GFP_IO GFP_COLD GFP_NOWARN GFP_REPEAT
			GFP_NOFAIL GFP_NORETRY GFP_COMP GFP_ZERO GFP_NOMEMALLOC GFP_MEMALLOC GFP_HARDWALL
			GFP_THISNODE GFP_RECLAIMABLE GFP_KMEMCG GFP_MOVABLE GFP_NOTRACK GFP_NO_KSWAPD
			GFP_OTHER_NODE`,
		note: "GFP_KMEMCG existed 3.8-3.14 only; RHEL 7 kernels carry backports",
	},
	// 4.4 to 4.14 went through three more layouts (__GFP_WAIT split into
	// __GFP_DIRECT_RECLAIM/__GFP_KSWAPD_RECLAIM at 0x400000/0x2000000 in
	// 4.4, __GFP_OTHER_NODE dropped in 4.10, __GFP_COLD and __GFP_NOTRACK
	// dropped in 4.15). They are not built in: read the host's format file.
	{
		name: "4.18", since: kver{4, 15, 0}, until: kver{5, 1, 0}, zero: "none",
		bits: `__GFP_DMA=0x01 __GFP_HIGHMEM=0x02 __GFP_DMA32=0x04 __GFP_MOVABLE=0x08
			__GFP_RECLAIMABLE=0x10 __GFP_HIGH=0x20 __GFP_IO=0x40 __GFP_FS=0x80 __GFP_WRITE=0x100
			__GFP_NOWARN=0x200 __GFP_RETRY_MAYFAIL=0x400 __GFP_NOFAIL=0x800 __GFP_NORETRY=0x1000
			__GFP_MEMALLOC=0x2000 __GFP_COMP=0x4000 __GFP_ZERO=0x8000 __GFP_NOMEMALLOC=0x10000
			__GFP_HARDWALL=0x20000 __GFP_THISNODE=0x40000 __GFP_ATOMIC=0x80000
			__GFP_ACCOUNT=0x100000 __GFP_DIRECT_RECLAIM=0x200000 __GFP_KSWAPD_RECLAIM=0x400000`,
		defs:  defs([]def{reclaimDef, atomicWithBit, nowaitKswapd}, modernCommon, []def{highuserMovable}, transhugeDefs),
		order: order415,
		note:  "RHEL 8 (4.18.0-*) keeps this layout",
	},
	{
		name: "5.4", since: kver{5, 1, 0}, until: kver{5, 14, 0}, zero: "none",
		bits:  bits51,
		defs:  defs([]def{reclaimDef, atomicWithBit, nowaitKswapd}, modernCommon, []def{highuserMovable}, transhugeDefs),
		order: order415,
	},
	{
		// __GFP_SKIP_KASAN_POISON was a real bit whatever the config, and
		// GFP_HIGHUSER_MOVABLE included it: user pages print as 0x1100cca.
		name: "5.15", since: kver{5, 14, 0}, until: kver{5, 18, 0}, zero: "none",
		bits: bits51 + ` __GFP_ZEROTAGS=0x800000 __GFP_SKIP_KASAN_POISON=0x1000000`,
		defs: defs([]def{reclaimDef, atomicWithBit, nowaitKswapd}, modernCommon,
			[]def{{"GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN_POISON"}}, transhugeDefs),
		order: order415 + ` __GFP_ZEROTAGS __GFP_SKIP_KASAN_POISON`,
	},
	{
		// The KASAN bits became 0 without CONFIG_KASAN_HW_TAGS and left
		// the name list.
		name: "6.1", since: kver{5, 18, 0}, until: kver{6, 3, 0}, zero: "none",
		bits: bits51 + ` __GFP_ZEROTAGS=0x800000 __GFP_SKIP_ZERO=0 __GFP_SKIP_KASAN_UNPOISON=0 __GFP_SKIP_KASAN_POISON=0`,
		defs: defs([]def{reclaimDef, atomicWithBit, nowaitKswapd}, modernCommon,
			[]def{{"GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN_POISON | __GFP_SKIP_KASAN_UNPOISON"}}, transhugeDefs),
		order: order415 + ` __GFP_ZEROTAGS`,
	},
	{
		name: "6.8", since: kver{6, 3, 0}, until: kver{6, 10, 0}, zero: "none",
		bits:  bits63,
		defs:  defs([]def{reclaimDef, atomicNoBit, nowaitKswapd}, modernCommon, []def{highuserMovableKasan}, transhugeDefs),
		order: strings.Replace(order415, "__GFP_ATOMIC ", "", 1) + ` __GFP_ZEROTAGS`,
	},
	{
		// The bits became an enum (___GFP_*_BIT) and __GFP_NO_OBJ_EXT
		// appeared; the name list kept its old order until 6.14.
		name: "6.12", since: kver{6, 10, 0}, until: kver{6, 14, 0}, zero: "none",
		bits:  bits63 + ` __GFP_NO_OBJ_EXT=0x1000000`,
		defs:  defs([]def{reclaimDef, atomicNoBit, nowaitKswapd}, modernCommon, []def{highuserMovableKasan}, transhugeDefs),
		order: strings.Replace(order415, "__GFP_ATOMIC ", "", 1) + ` __GFP_ZEROTAGS`,
		note:  "6.10-6.13 have no name for __GFP_NO_OBJ_EXT (checked on Debian 13's 6.12): it shows as 0x1000000",
	},
	{
		name: "6.14", since: kver{6, 14, 0}, until: kver{6, 18, 0}, zero: "none",
		bits:  bits63 + ` __GFP_NO_OBJ_EXT=0x1000000`,
		defs:  defs([]def{reclaimDef, atomicNoBit, nowaitKswapd}, modernCommon, []def{highuserMovableKasan}, transhugeDefs),
		order: order614,
	},
	{
		// GFP_NOWAIT implies __GFP_NOWARN since 6.18.
		name: "6.18", since: kver{6, 18, 0}, zero: "none",
		bits: bits63 + ` __GFP_NO_OBJ_EXT=0x1000000`,
		defs: defs([]def{reclaimDef, atomicNoBit, {"GFP_NOWAIT", "__GFP_KSWAPD_RECLAIM | __GFP_NOWARN"}},
			modernCommon, []def{highuserMovableKasan}, transhugeDefs),
		order: order614,
	},
}

var (
	atomicWithBit        = def{"GFP_ATOMIC", "__GFP_HIGH|__GFP_ATOMIC|__GFP_KSWAPD_RECLAIM"}
	atomicNoBit          = def{"GFP_ATOMIC", "__GFP_HIGH|__GFP_KSWAPD_RECLAIM"}
	nowaitKswapd         = def{"GFP_NOWAIT", "__GFP_KSWAPD_RECLAIM"}
	highuserMovable      = def{"GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER | __GFP_MOVABLE"}
	highuserMovableKasan = def{"GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER | __GFP_MOVABLE | __GFP_SKIP_KASAN"}

	// Composites of 2.6.32 and 3.x, when __GFP_WAIT was the sleep bit and
	// GFP_ATOMIC was __GFP_HIGH alone.
	oldDefs = []def{
		{"GFP_ATOMIC", "__GFP_HIGH"},
		{"GFP_NOIO", "__GFP_WAIT"},
		{"GFP_NOFS", "__GFP_WAIT | __GFP_IO"},
		{"GFP_KERNEL", "__GFP_WAIT | __GFP_IO | __GFP_FS"},
		{"GFP_TEMPORARY", "__GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_RECLAIMABLE"},
		{"GFP_USER", "__GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_HARDWALL"},
		{"GFP_HIGHUSER", "__GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_HARDWALL | __GFP_HIGHMEM"},
		{"GFP_HIGHUSER_MOVABLE", "__GFP_WAIT | __GFP_IO | __GFP_FS | __GFP_HARDWALL | __GFP_HIGHMEM | __GFP_MOVABLE"},
	}
)

// entries evaluates the layout into the kernel's name array.
func (l layout) entries() ([]Entry, error) {
	env := map[string]uint64{}
	for _, f := range strings.Fields(l.bits) {
		name, val, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bit %q is not NAME=value", f)
		}
		v, err := strconv.ParseUint(val, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("bit %s: %w", name, err)
		}
		env[name] = v
	}
	for _, d := range l.defs {
		toks, err := tokenize(d.expr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		v, err := evalExpr(toks, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		env[d.name] = v
	}
	var out []Entry
	for _, f := range strings.Fields(l.order) {
		printed, macro, _ := strings.Cut(f, "=")
		if macro == "" {
			macro = printed
		}
		v, ok := env[macro]
		if !ok {
			v, ok = env["__"+macro] // old kernels print GFP_HIGH for __GFP_HIGH
		}
		if !ok {
			return nil, fmt.Errorf("no value for %s", f)
		}
		out = append(out, Entry{Mask: v, Name: printed})
	}
	return out, nil
}

var builtinCache sync.Map // layout name -> *Table

func (l layout) table() (*Table, error) {
	if t, ok := builtinCache.Load(l.name); ok {
		return t.(*Table), nil
	}
	entries, err := l.entries()
	if err != nil {
		return nil, fmt.Errorf("building table for %s: %w", l.name, err)
	}
	t := newTable(entries, "|", l.zero, "built-in table for "+l.name)
	builtinCache.Store(l.name, t)
	return t, nil
}

// ForRelease returns the built-in table for a kernel release such as
// "4.18.0-513.el8.x86_64", for decoding logs of a host whose tracefs is out
// of reach. Distribution kernels backport GFP changes, so the host's own
// format file, when available, is always better.
func ForRelease(release string) (*Table, error) {
	v, err := parseRelease(release)
	if err != nil {
		return nil, err
	}
	l, ok := layoutFor(v)
	if !ok {
		return nil, fmt.Errorf("no built-in GFP table for kernel %s (built in: %s)", v, builtinNames())
	}
	return l.table()
}

func layoutFor(v kver) (layout, bool) {
	for _, l := range layouts {
		if !v.less(l.since) && (l.until == kver{} || v.less(l.until)) {
			return l, true
		}
	}
	return layout{}, false
}

func builtinNames() string {
	var names []string
	for _, l := range layouts {
		names = append(names, l.name)
	}
	return strings.Join(names, ", ")
}
