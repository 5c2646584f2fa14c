package loader

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/event"
)

// attach tries the family's candidates in order of preference, on the
// family's parsed and configured object. It returns the family attached,
// nil if no candidate could be.
func (s *Session) attach(f plan, base *ebpf.CollectionSpec) (*attached, event.HookStatus) {
	st := event.HookStatus{Signal: f.signal}
	// The family's maps are created once, before the first candidate is
	// loaded, and every candidate loads its programs into them. Created
	// per candidate, a candidate the kernel refuses (fexit where tracing
	// programs are not permitted) made and freed all of them (a 4 MiB
	// stack map, hash tables preallocated in full) before the next
	// candidate made them again. The candidates hold clones: these go.
	var maps *ebpf.Collection
	defer func() {
		if maps != nil {
			maps.Close()
		}
	}()
	for _, c := range f.cands {
		if s.cfg.disabled(c.name) {
			st.Rejected = append(st.Rejected, event.Attempt{Hook: c.name, Reason: "disabled by configuration"})
			continue
		}
		if c.needsTracefs {
			if err := s.ensureTracefs(); err != nil {
				st.Rejected = append(st.Rejected, event.Attempt{Hook: c.name, Reason: err.Error()})
				continue
			}
		}
		if c.usable != nil {
			if err := c.usable(s); err != nil {
				st.Rejected = append(st.Rejected, event.Attempt{Hook: c.name, Reason: err.Error()})
				continue
			}
		}
		if maps == nil {
			m, err := newMaps(base)
			if err != nil {
				st.Rejected = append(st.Rejected, event.Attempt{Hook: c.name, Reason: shortError(err)})
				continue
			}
			maps = m
		}
		coll, links, hook, err := s.loadCandidate(base, c, maps.Maps)
		if err != nil {
			st.Rejected = append(st.Rejected, event.Attempt{Hook: c.name, Reason: shortError(err)})
			continue
		}
		rd, err := ringbuf.NewReader(coll.Maps[f.ringbuf])
		if err != nil {
			closeLinks(links)
			coll.Close()
			st.Rejected = append(st.Rejected, event.Attempt{Hook: c.name, Reason: fmt.Sprintf("opening ring buffer: %v", err)})
			continue
		}
		st.Hook = hook
		st.Attached = true
		st.Note = c.note
		a := &attached{family: f.family, coll: coll, links: links, reader: rd}
		for _, comp := range f.companions {
			st.Companions = append(st.Companions, s.attachCompanion(base, a, comp))
		}
		return a, st
	}
	return nil, st
}

// attachCompanion loads a companion program into the maps of the attached
// family, so its records arrive in the same ring buffer.
func (s *Session) attachCompanion(base *ebpf.CollectionSpec, a *attached, c candidate) event.Companion {
	st := event.Companion{Hook: c.name, Note: c.note}
	if s.cfg.disabled(c.name) {
		st.Reason = "disabled by configuration"
		return st
	}
	if c.tracefsFallback {
		// Best effort: without tracefs the fallback fails, not the hook.
		_ = s.ensureTracefs()
	}
	if c.usable != nil {
		if err := c.usable(s); err != nil {
			st.Reason = err.Error()
			return st
		}
	}
	coll, links, _, err := s.loadCandidate(base, c, a.coll.Maps)
	if err != nil {
		st.Reason = shortError(err)
		return st
	}
	a.companions = append(a.companions, coll)
	a.links = append(a.links, links...)
	st.Attached = true
	return st
}

// newMaps creates the maps of a family's configured object, as a load of
// the whole object would (data sections filled and frozen), without its
// programs.
func newMaps(base *ebpf.CollectionSpec) (*ebpf.Collection, error) {
	spec := &ebpf.CollectionSpec{
		Maps:      base.Maps, // copied by the loader before use
		Programs:  map[string]*ebpf.ProgramSpec{},
		Variables: make(map[string]*ebpf.VariableSpec, len(base.Variables)),
		Types:     base.Types,
		ByteOrder: base.ByteOrder,
	}
	for name, v := range base.Variables {
		spec.Variables[name] = v.Copy()
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return nil, fmt.Errorf("creating maps: %w", explainLoadError(err))
	}
	return coll, nil
}

// loadCandidate loads and attaches one candidate and returns the hook's
// name as attached (with the resolved target for fexit). Maps named in
// shared are used instead of new ones.
func (s *Session) loadCandidate(base *ebpf.CollectionSpec, c candidate, shared map[string]*ebpf.Map) (*ebpf.Collection, []link.Link, string, error) {
	spec, err := candidateSpec(base, c.programs)
	if err != nil {
		return nil, nil, "", err
	}
	hook := c.name
	if c.prepare != nil {
		h, err := c.prepare(spec, s.kernel)
		if err != nil {
			return nil, nil, "", err
		}
		hook = h
	}
	replace := map[string]*ebpf.Map{}
	for name := range spec.Maps {
		if m, ok := shared[name]; ok {
			replace[name] = m
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		MapReplacements: replace,
		Cache:           s.btfCache,
		Programs:        ebpf.ProgramOptions{KernelTypes: s.kernel},
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("loading %s: %w", hook, explainLoadError(err))
	}
	links, err := c.attach(coll)
	if err != nil {
		coll.Close()
		return nil, nil, "", explainLoadError(err)
	}
	return coll, links, hook, nil
}

// candidateSpec is what one candidate loads of its family's object: its
// own programs (the programs of other hooks would be loaded, and may be
// refused, for nothing), with the maps and variables, so that the
// candidate may change them (prepare, MapReplacements). Programs and maps
// are shallow copies: prepare changes their fields (attach target, type),
// never their instructions or contents, and cilium/ebpf copies both
// again before it rewrites them, so a deep copy here was a third one of
// every instruction. The object's BTF is shared too: loading only reads
// it, and the candidates of a family load one after the other.
// base.Copy() would copy every program of the object and its whole BTF
// for each candidate: the stall families hold two programs per hook
// (tp_btf and tracepoint).
func candidateSpec(base *ebpf.CollectionSpec, programs []string) (*ebpf.CollectionSpec, error) {
	spec := &ebpf.CollectionSpec{
		Maps:      make(map[string]*ebpf.MapSpec, len(base.Maps)),
		Programs:  make(map[string]*ebpf.ProgramSpec, len(programs)),
		Variables: make(map[string]*ebpf.VariableSpec, len(base.Variables)),
		Types:     base.Types,
		ByteOrder: base.ByteOrder,
	}
	for _, p := range programs {
		ps := base.Programs[p]
		if ps == nil {
			return nil, fmt.Errorf("the BPF object has no program %s", p)
		}
		cp := *ps
		spec.Programs[p] = &cp
	}
	for name, m := range base.Maps {
		cm := *m
		spec.Maps[name] = &cm
	}
	for name, v := range base.Variables {
		spec.Variables[name] = v.Copy()
	}
	return spec, nil
}

// shortError keeps the first line of an error (verifier logs are long),
// without cilium/ebpf's RLIMIT_MEMLOCK hint: Start has already lifted it.
func shortError(err error) string {
	msg := strings.ReplaceAll(err.Error(), " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", "")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// explainLoadError adds what a user can do about common refusals.
func explainLoadError(err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (the kernel refused this program type: lockdown, a security module, or missing capabilities)", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w (not supported by this kernel)", err)
	}
	return err
}
