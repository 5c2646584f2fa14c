package loader

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/decode"
	"github.com/memtrace/memtrace/internal/event"
)

// A signal family is one C file, bpf/<family>.c, and one Go file set here,
// family_<family>.go: its hook candidates and fallbacks, the loading of its
// object, the decoding of its records and the reading of its aggregates.
// Each registers a family descriptor from init; the session core (Start,
// attach, read, Stats, ForgetPids, Close) iterates the registry and names
// no family.
//
// The families are files of this package rather than a package each:
// bpf2go generates unexported types (allocAllocEvent, ...) into the
// package that runs it, and a family needs the session's private
// machinery (candidate, Session, the shared record header). Subpackages
// would have to export all of that, or be imported by the core that they
// themselves import.

// family describes one signal family to the session core.
type family struct {
	signal event.Signal
	// load parses the embedded object and checks it against its
	// generated bindings (loadChecked).
	load func() (*ebpf.CollectionSpec, error)
	// configure sets the family's own load-time constants and map sizes
	// from the configuration (nil: CFG is all it reads). It runs once on
	// the parsed object, after CFG is written and before the family's
	// maps are created: the candidates share those maps (.rodata
	// included), so a constant set per candidate would not reach the
	// programs.
	configure func(Config, *ebpf.CollectionSpec) error
	// ringbuf and stats name the family's ring buffer and its per-CPU
	// array of enum stat_index counters.
	ringbuf, stats string
	// candidates are the ways of attaching the family, best first; an
	// error is a configuration the family cannot honour (Config.AllocHook).
	candidates func(Config) ([]candidate, error)
	// companions are attached beside whichever candidate succeeded,
	// sharing its maps; each may fail on its own.
	companions []candidate
	// decode turns one ring-buffer record into an event with numbers,
	// no names.
	decode func(s *Session, raw []byte) (event.Event, error)
	// aggregates reads the family's in-kernel aggregates, named, as a
	// slice of its row type (nil: the family keeps none); it is what
	// Session.Aggregates returns, and what the family's view in
	// internal/present/view reads.
	aggregates func(s *Session) (any, error)
	// forget deletes the in-kernel aggregates of the processes drop
	// matches (nil: the family keeps none).
	forget func(coll *ebpf.Collection, drop func(pid uint32) bool) error
	// kernelNames sets the decoder's tables of the running kernel that
	// the family's records need (enum names from its BTF), before the
	// session drops the parsed BTF (nil: it needs none).
	kernelNames func(kernel *btf.Spec, d *decode.Decoder)
}

// registry holds every family, by signal.
var registry = map[event.Signal]family{}

// register adds a family; called from the init of each family file.
func register(f family) {
	if _, dup := registry[f.signal]; dup {
		panic(fmt.Sprintf("loader: signal family %q registered twice", f.signal))
	}
	registry[f.signal] = f
}

// plan is a requested family with its candidates for this configuration.
type plan struct {
	family
	cands []candidate
}

// requested returns the registered families cfg asks for, in
// event.AllSignals order (the order of Hooks()), with their candidates.
// Every family's candidates are built, requested or not, so a bad hook
// option is refused whatever the signals.
func requested(cfg Config) ([]plan, error) {
	var plans []plan
	for _, sig := range event.AllSignals {
		f, ok := registry[sig]
		if !ok {
			return nil, fmt.Errorf("signal %q has no family in this build", sig)
		}
		c, err := f.candidates(cfg)
		if err != nil {
			return nil, err
		}
		if cfg.has(sig) {
			plans = append(plans, plan{f, c})
		}
	}
	return plans, nil
}
