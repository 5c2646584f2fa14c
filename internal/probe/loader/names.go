package loader

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/decode"
	"github.com/memtrace/memtrace/internal/decode/ksym"
	"github.com/memtrace/memtrace/internal/decode/migratetype"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/rawbtf"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// Naming selects what the session names; Decoding says where its names
// came from. Both are event-model vocabulary, so that commands choose
// and read them without importing the loader.
type (
	Naming   = event.Naming
	Decoding = event.Decoding
)

// names applies the decoder to what the session reports. Readers of every
// ring buffer and callers of the aggregate readers share it: mu
// serialises them (the decoder caches stacks, the task namer cgroups).
type names struct {
	mu  sync.Mutex
	dec decode.Decoder
	// symbols is closed when /proc/kallsyms is loaded (or failed); nil
	// when symbols were not asked for.
	symbols  chan struct{}
	symsErr  error
	decoding Decoding
}

// buildGFP builds the GFP table from tracefs and the kernel's GFP bit
// enum found at start; the __GFP_NOWARN bit of the configuration comes
// from it.
func (s *Session) buildGFP(release string, enum []gfp.EnumMember) {
	n := &s.names
	t, err := gfp.Load(s.tracefsDir, enum, release)
	if err != nil {
		n.decoding.Warnings = append(n.decoding.Warnings, fmt.Sprintf("GFP flag names unavailable: %v", err))
		return
	}
	n.dec.GFP = t
	n.decoding.GFPSource = t.Source()
	s.gfpNowarn, _ = t.Bit("__GFP_NOWARN")
	s.gfpDirectReclaim, _ = t.Bit("__GFP_DIRECT_RECLAIM")
	s.gfpHigh, _ = t.Bit("__GFP_HIGH")
}

// buildMigratetypes names migratetypes from the enum in the parsed
// kernel BTF, found by name through its index.
func (s *Session) buildMigratetypes() {
	var members []migratetype.EnumMember
	var e *btf.Enum
	if s.kernel.TypeByName(migratetype.EnumName, &e) == nil {
		members = enumMembers[migratetype.EnumMember](e.Values)
	}
	mt := migratetype.FromEnum(members)
	s.names.dec.Migratetypes = mt
	s.names.decoding.MigratetypeSource = mt.Source()
}

// rawGFPEnum reads the members of the kernel's GFP bit enum from the raw
// BTF, nil when it has none (before 6.10).
func rawGFPEnum(raw *rawbtf.File) []gfp.EnumMember {
	members, err := raw.EnumMembers(raw.EnumWithValue(gfp.EnumMarker))
	if err != nil {
		return nil
	}
	return enumMembers[gfp.EnumMember](members)
}

// parsedGFPEnum finds the kernel's GFP bit enum in the parsed kernel BTF
// where the raw BTF could not be mapped (before 6.16). The enum is
// anonymous: only inflating every type finds it (~10 ms).
func parsedGFPEnum(kernel *btf.Spec) []gfp.EnumMember {
	for typ, err := range kernel.All() {
		if err != nil {
			return nil
		}
		if e, ok := typ.(*btf.Enum); ok && slices.ContainsFunc(e.Values, func(v btf.EnumValue) bool { return v.Name == gfp.EnumMarker }) {
			return enumMembers[gfp.EnumMember](e.Values)
		}
	}
	return nil
}

// member is the shape of an enum member in every package here: a BTF
// reader's (rawbtf.EnumMember, btf.EnumValue) and a decoder's
// (gfp.EnumMember, migratetype.EnumMember).
type member interface {
	~struct {
		Name  string
		Value uint64
	}
}

// enumMembers converts a BTF reader's enum members to a decoder's.
func enumMembers[To, From member](in []From) []To {
	out := make([]To, len(in))
	for i, m := range in {
		out[i] = To(m)
	}
	return out
}

// finishNames sets what the decoder needs once the probes are attached,
// and starts loading kernel symbols if asked.
func (s *Session) finishNames(n Naming, hugePageSize uint64) {
	nm := &s.names
	nm.dec.HugePageSize = hugePageSize
	// A PMD-sized THP is a pageblock on every architecture memtrace runs
	// on (pageblock_order = HPAGE_PMD_ORDER with huge pages configured).
	// Unknown, it is taken as 9, as the programs do.
	nm.dec.THPOrder = 9
	if s.pageblockOrder > 0 {
		nm.dec.THPOrder = uint32(s.pageblockOrder)
	}
	nm.dec.Tasks = n.Tasks
	if n.Stacks || n.Symbols {
		nm.dec.Stacks = s.StackAddrs
	}
	nm.decoding.ContextSource = s.ContextSource()
	if strings.HasPrefix(nm.decoding.ContextSource, "unavailable") {
		nm.decoding.Warnings = append(nm.decoding.Warnings, "execution context (process, softirq, hardirq) unknown: "+nm.decoding.ContextSource)
	}
	if !n.Symbols {
		return
	}
	nm.symbols = make(chan struct{})
	go func() {
		defer close(nm.symbols)
		syms, err := ksym.Load(kallsymsPath)
		if err != nil {
			nm.symsErr = err
			return
		}
		// Without the extents an address past a module's code (a
		// trampoline JITed after kallsyms was read) would be named
		// after the module's last function; with an error the
		// symbols are still right inside every function.
		_ = syms.LoadModules(modulesPath)
		nm.dec.Symbols = syms
	}()
}

// warn adds a warning found while the session runs.
func (n *names) warn(msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.decoding.Warnings = append(n.decoding.Warnings, msg)
}

// waitSymbols waits for kernel symbols if they were asked for; it is
// called with mu held, before the first stack is symbolized.
func (n *names) waitSymbols() {
	if n.symbols != nil {
		<-n.symbols
	}
}

// event names one event in place.
func (n *names) event(ev *event.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ev.AllocFailure != nil || ev.WarnAlloc != nil ||
		(ev.Reclaim != nil && len(ev.Reclaim.StackAddrs) > 0) || (ev.Compaction != nil && len(ev.Compaction.StackAddrs) > 0) {
		n.waitSymbols()
	}
	n.dec.Event(ev)
}

// Decoding says where names came from; it waits for kernel symbols if
// they were asked for and are still loading.
func (s *Session) Decoding() Decoding {
	n := &s.names
	n.mu.Lock()
	defer n.mu.Unlock()
	d := n.decoding
	d.Warnings = append([]string(nil), n.decoding.Warnings...)
	if n.symbols != nil {
		n.waitSymbols()
		if n.symsErr != nil {
			d.Symbols = "unavailable"
			d.Warnings = append(d.Warnings, fmt.Sprintf("kernel stacks not symbolized: %v", n.symsErr))
		} else {
			d.Symbols = kallsymsPath
		}
	}
	return d
}

// GFP is the GFP flag table of the running kernel, nil when flags cannot
// be named.
func (s *Session) GFP() *gfp.Table { return s.names.dec.GFP }

// Migratetypes names the running kernel's migrate types.
func (s *Session) Migratetypes() *migratetype.Names { return s.names.dec.Migratetypes }

// allocAggregates names aggregate rows in place.
func (n *names) allocAggregates(rows []event.AllocAggregate) {
	if len(rows) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.waitSymbols()
	for i := range rows {
		n.dec.AllocAggregate(&rows[i])
	}
}

// extfragAggregates names aggregate rows in place.
func (n *names) extfragAggregates(rows []event.ExtfragAggregate) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range rows {
		n.dec.ExtfragAggregate(&rows[i])
	}
}

// atomicSources names the tasks of atomic-demand rows in place.
func (n *names) atomicSources(rows []event.AtomicSource) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range rows {
		n.dec.Task(&rows[i].Task)
	}
}
