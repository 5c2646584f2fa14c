package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/memtrace/memtrace/internal/event"
)

// The alloc family (bpf/alloc.c): page allocation failures, and the
// failures the kernel logs (warn_alloc, a companion program writing to the
// same ring buffer).

func init() {
	register(family{
		signal:     event.SignalAlloc,
		load:       loadAllocSpec,
		ringbuf:    allocMapAllocEvents,
		stats:      allocMapAllocStats,
		candidates: func(cfg Config) ([]candidate, error) { return allocCandidates(cfg.AllocHook) },
		companions: []candidate{warnAllocCompanion()},
		decode:     decodeAlloc,
		aggregates: func(s *Session) (any, error) { return s.AllocAggregates() },
		forget: func(coll *ebpf.Collection, drop func(uint32) bool) error {
			return deleteWhere[allocAllocKey, allocAllocVal](coll.Maps[allocMapAllocAgg], func(k allocAllocKey) bool { return drop(k.Pid) })
		},
	})
}

func loadAllocSpec() (*ebpf.CollectionSpec, error) {
	return loadChecked("alloc", loadAlloc, &allocSpecs{})
}

// allocTargets are the allocator entry points, newest first. All take
// (gfp, order, preferred_nid, nodemask) and return the page. From 6.15 the
// tracepoint sits in __alloc_frozen_pages_noprof, which slab pages reach
// without passing __alloc_pages_noprof, so it is preferred.
var allocTargets = []string{"__alloc_frozen_pages_noprof", "__alloc_pages_noprof", "__alloc_pages", "__alloc_pages_nodemask"}

func allocCandidates(mode string) ([]candidate, error) {
	btfc := candidate{name: "tp_btf/mm_page_alloc", programs: []string{allocProgAllocFailBtf}, attach: tpBTF(allocProgAllocFailBtf)}
	tpc := candidate{
		name: "tracepoint/kmem/mm_page_alloc", programs: []string{allocProgAllocFailTp}, needsTracefs: true,
		attach: tracepoints(map[string][2]string{allocProgAllocFailTp: {"kmem", "mm_page_alloc"}}),
	}
	fexit := candidate{
		name: "fexit/<allocator>", programs: []string{allocProgAllocFailFexit},
		note: "migratetype is not known on fexit",
		prepare: func(spec *ebpf.CollectionSpec, kernel *btf.Spec) (string, error) {
			for _, fn := range allocTargets {
				var f *btf.Func
				if kernel.TypeByName(fn, &f) == nil {
					spec.Programs[allocProgAllocFailFexit].AttachTo = fn
					return "fexit/" + fn, nil
				}
			}
			return "", fmt.Errorf("none of %v is in kernel BTF", allocTargets)
		},
		attach: fexitLinks(allocProgAllocFailFexit),
	}
	switch mode {
	case "", "auto":
		// fexit on the allocator where the kernel permits tracing programs
		// (it sees the allocator's own return value), else the cheapest
		// tracepoint. Kernels that refuse fexit (lockdown, no trampolines)
		// do so at load, in well under a millisecond.
		return []candidate{fexit, btfc, tpc}, nil
	case "tp_btf":
		return []candidate{btfc}, nil
	case "tracepoint":
		return []candidate{tpc}, nil
	case "fexit":
		return []candidate{fexit}, nil
	}
	return nil, fmt.Errorf("unknown allocation hook %q (want auto, tp_btf, tracepoint or fexit)", mode)
}

// warnAllocCompanion marks the failures the kernel writes to its log. It
// needs kprobes, which some kernels lack (this is never fatal).
func warnAllocCompanion() candidate {
	return candidate{
		name:            "kprobe/warn_alloc",
		programs:        []string{allocProgWarnAllocKprobe},
		tracefsFallback: true,
		note:            "failures the kernel logs (page allocation failure, vmalloc error)",
		usable:          kprobesUsable,
		attach: attachEach(func(name string, p *ebpf.Program) (link.Link, error) {
			l, err := link.Kprobe("warn_alloc", p, nil)
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("this kernel has no kprobes (CONFIG_KPROBES): %w", err)
			}
			if err != nil {
				return nil, fmt.Errorf("attaching kprobe warn_alloc: %w", err)
			}
			return l, nil
		}, allocProgWarnAllocKprobe),
	}
}

// kprobePMU is where the kernel lists its kprobe PMU, which cilium/ebpf
// attaches kprobes with; kprobe_events in tracefs is its fallback.
var kprobePMU = "/sys/bus/event_source/devices/kprobe"

// kprobesUsable refuses the kprobe before its program is loaded and
// verified (458 instructions, a BTF blob, a collection, at every start)
// when the kernel offers neither way of attaching one.
func kprobesUsable(s *Session) error {
	if _, err := os.Stat(kprobePMU); err == nil {
		return nil
	}
	s.tracefsMu.Lock()
	dir := s.tracefsDir
	s.tracefsMu.Unlock()
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "kprobe_events")); err == nil {
			return nil
		}
	}
	return fmt.Errorf("this kernel has no kprobes (CONFIG_KPROBES): no %s, no kprobe_events in tracefs", kprobePMU)
}

// decodeAlloc reads the alloc ring buffer, which carries two record
// types: they are told apart by the header's kind.
func decodeAlloc(s *Session, raw []byte) (event.Event, error) {
	if len(raw) > kindOffset && allocEventKind(raw[kindOffset]) == allocEventKindEVENT_WARN_ALLOC {
		var r allocWarnEvent
		if err := decodeRecord(raw, &r); err != nil {
			return event.Event{}, err
		}
		return s.warnEvent(r), nil
	}
	var r allocAllocEvent
	if err := decodeRecord(raw, &r); err != nil {
		return event.Event{}, err
	}
	return s.allocEvent(r), nil
}

func (s *Session) allocEvent(r allocAllocEvent) event.Event {
	ev := s.header(event.KindAllocFailure, r.Hdr)
	af := &event.AllocFailure{
		Order: r.Order, GFPFlags: event.Hex(r.GfpFlags), Migratetype: r.Migratetype,
		StackID: r.StackId, Count: r.Count,
	}
	if r.PreemptCount >= 0 {
		pc := r.PreemptCount
		af.PreemptCount = &pc
	}
	ev.AllocFailure = af
	s.judgeZones(&ev)
	return ev
}

func (s *Session) warnEvent(r allocWarnEvent) event.Event {
	ev := s.header(event.KindWarnAlloc, r.Hdr)
	w := &event.WarnAlloc{
		What: "other", GFPFlags: event.Hex(r.GfpFlags), Logged: r.Nowarn == 0,
		Format: commString(r.Fmt[:]), StackID: r.StackId,
	}
	switch allocWarnWhat(r.What) {
	case allocWarnWhatWARN_PAGE_ALLOC:
		w.What = "page allocation failure"
		order := uint32(r.Arg)
		w.Order = &order
	case allocWarnWhatWARN_VMALLOC:
		w.What = "vmalloc error"
		size := r.Arg
		w.Size = &size
	}
	ev.WarnAlloc = w
	return ev
}

// AllocAggregates returns the exact per-key failure counts, named.
func (s *Session) AllocAggregates() ([]event.AllocAggregate, error) {
	a := s.families[event.SignalAlloc]
	if a == nil {
		return nil, nil
	}
	var out []event.AllocAggregate
	var k allocAllocKey
	var v allocAllocVal
	it := a.coll.Maps[allocMapAllocAgg].Iterate()
	for it.Next(&k, &v) {
		out = append(out, event.AllocAggregate{
			Task:    event.Task{Pid: k.Pid, Tid: v.LastTid, Comm: commString(v.Comm[:]), CgroupID: v.CgroupId, MemcgID: v.MemcgId},
			Context: contextOf(k.Ctx), Order: k.Order, GFPFlags: event.Hex(k.GfpFlags),
			Migratetype: v.Migratetype, StackID: v.StackId, Count: v.Count,
			FirstSeen: s.wallTime(v.FirstNs), LastSeen: s.wallTime(v.LastNs),
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading alloc_agg: %w", err)
	}
	s.names.allocAggregates(out)
	return out, nil
}

// StackAddrs returns the kernel return addresses of a captured stack,
// innermost first. Stack ids are those of the alloc family's stack map.
func (s *Session) StackAddrs(id int32) ([]uint64, error) {
	a := s.families[event.SignalAlloc]
	if a == nil || id < 0 {
		return nil, nil
	}
	m := a.coll.Maps[allocMapAllocStacks]
	frames := make([]uint64, m.ValueSize()/8)
	if err := m.Lookup(uint32(id), frames); err != nil {
		return nil, fmt.Errorf("reading stack %d: %w", id, err)
	}
	n := 0
	for n < len(frames) && frames[n] != 0 {
		n++
	}
	return frames[:n], nil
}
