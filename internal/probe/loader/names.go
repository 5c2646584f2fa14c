package loader

import (
	"fmt"
	"strings"
	"sync"

	"github.com/memtrace/memtrace/internal/decode/decode"
	"github.com/memtrace/memtrace/internal/decode/ksym"
	"github.com/memtrace/memtrace/internal/decode/migratetype"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// Naming selects what the session names beyond the tables of the running
// kernel (GFP flags, migratetypes, errno and syscall flags), which it
// always builds.
type Naming struct {
	// Stacks reads the frames of captured kernel stacks; Symbols also
	// symbolizes them with /proc/kallsyms (about 4 MB and 80 ms, loaded
	// in the background once the probes are attached). Without Symbols
	// frames are hex addresses.
	Stacks, Symbols bool
	// Tasks adds what the host knows of a task (cgroup path, container);
	// nil leaves them empty. container.TaskNamer is this host's.
	Tasks func(*event.Task)
}

// Decoding says where the session's names came from, and what could not
// be named.
type Decoding struct {
	GFPSource         string
	MigratetypeSource string
	// Symbols is where stacks are symbolized from, "unavailable" when
	// /proc/kallsyms could not be read, "" when not asked for.
	Symbols string
	// ContextSource is Session.ContextSource.
	ContextSource string
	Warnings      []string
}

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

// buildGFP builds the GFP table from the kernel BTF and tracefs found at
// start; the __GFP_NOWARN bit of the configuration comes from it.
func (s *Session) buildGFP(release string) {
	n := &s.names
	t, err := gfp.LoadKernel(s.tracefsDir, s.kernel, s.gfpEnum, release)
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

// buildMigratetypes names migratetypes from the kernel BTF.
func (s *Session) buildMigratetypes() {
	mt := migratetype.FromBTF(s.kernel)
	s.names.dec.Migratetypes = mt
	s.names.decoding.MigratetypeSource = mt.Source()
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
	if ev.AllocFailure != nil || ev.WarnAlloc != nil {
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
