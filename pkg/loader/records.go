package loader

import (
	"github.com/memtrace/memtrace/pkg/event"
)

// eventHdr is struct event_hdr of bpf/common.h. bpf2go names it only in the
// alloc bindings; the other program sets embed an identical anonymous
// struct, which converts to this type.
type eventHdr = allocEventHdr

// commString cuts a kernel string at its NUL.
func commString(c []int8) string {
	b := make([]byte, 0, len(c))
	for _, x := range c {
		if x == 0 {
			break
		}
		b = append(b, byte(x))
	}
	return string(b)
}

func taskFromHdr(h eventHdr) event.Task {
	return event.Task{Pid: h.Pid, Tid: h.Tid, Comm: commString(h.Comm[:]), CgroupID: h.CgroupId, MemcgID: h.MemcgId}
}

func (s *Session) header(kind event.Kind, h eventHdr) event.Event {
	return event.Event{
		Kind: kind, Time: s.wallTime(h.TsNs), MonoNs: h.TsNs, CPU: h.Cpu,
		Context: event.Context(h.Ctx), Task: taskFromHdr(h),
	}
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
	return ev
}

func (s *Session) extfragEvent(r extfragExtfragEvent) event.Event {
	ev := s.header(event.KindExtfrag, eventHdr(r.Hdr))
	var co *bool
	if r.ChangeOwnership >= 0 {
		b := r.ChangeOwnership > 0
		co = &b
	}
	ev.Extfrag = &event.Extfrag{
		PFN: r.Pfn, AllocOrder: r.AllocOrder, FallbackOrder: r.FallbackOrder,
		AllocMigratetype: r.AllocMigratetype, FallbackMigratetype: r.FallbackMigratetype,
		ChangeOwnership: co, Fragmenting: r.Fragmenting != 0, Count: r.Count,
	}
	return ev
}

// Values of enum hugetlb_call and the note bits in bpf/hugetlb.c.
const (
	callShmget = 1
	callMmap   = 2
	callShmat  = 3

	noteHugeRequest      = 0x1
	noteAfterHugeFailure = 0x2
)

func (s *Session) hugetlbEvent(r hugetlbHugetlbEvent) event.Event {
	ev := s.header(event.KindHugetlb, eventHdr(r.Hdr))
	h := &event.Hugetlb{
		Size: r.Size, Flags: event.Hex(r.Flags), Result: r.Ret,
		OK:               r.Ret >= 0 || r.Ret < -4095,
		HugeRequest:      r.Note&noteHugeRequest != 0,
		AfterHugeFailure: r.Note&noteAfterHugeFailure != 0,
		DurationNs:       r.DurationNs,
	}
	switch r.Call {
	case callShmget:
		h.Call = event.CallShmget
		key := int64(int32(r.Key)) // key_t is an int
		h.Key = &key
		if h.OK {
			id := r.Ret
			h.ShmID = &id
		}
	case callMmap:
		h.Call = event.CallMmap
		fd := int32(r.Arg)
		h.Fd = &fd
		h.ProtBits = uint32(r.Key)
		if h.OK {
			a := event.Hex(uint64(r.Ret))
			h.Address = &a
		}
	case callShmat:
		h.Call = event.CallShmat
		id := int64(int32(r.Arg))
		h.ShmID = &id
		if h.OK {
			a := event.Hex(uint64(r.Ret))
			h.Address = &a
		}
	}
	ev.Hugetlb = h
	return ev
}

// Values of enum warn_what in bpf/alloc.c.
const (
	warnPageAlloc = 1
	warnVmalloc   = 2
)

func (s *Session) warnEvent(r allocWarnEvent) event.Event {
	ev := s.header(event.KindWarnAlloc, r.Hdr)
	w := &event.WarnAlloc{
		What: "other", GFPFlags: event.Hex(r.GfpFlags), Logged: r.Nowarn == 0,
		Format: commString(r.Fmt[:]), StackID: r.StackId,
	}
	switch r.What {
	case warnPageAlloc:
		w.What = "page allocation failure"
		order := uint32(r.Arg)
		w.Order = &order
	case warnVmalloc:
		w.What = "vmalloc error"
		size := r.Arg
		w.Size = &size
	}
	ev.WarnAlloc = w
	return ev
}
