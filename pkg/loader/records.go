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
		Context: contextOf(h.Ctx), Task: taskFromHdr(h),
	}
}

// contextOf names a value of enum exec_ctx (bpf/common.h).
func contextOf(c uint8) event.Context {
	switch allocExecCtx(c) {
	case allocExecCtxCTX_PROCESS:
		return event.ContextProcess
	case allocExecCtxCTX_SOFTIRQ:
		return event.ContextSoftirq
	case allocExecCtxCTX_HARDIRQ:
		return event.ContextHardirq
	case allocExecCtxCTX_NMI:
		return event.ContextNMI
	}
	return event.ContextUnknown
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

func (s *Session) hugetlbEvent(r hugetlbHugetlbEvent) event.Event {
	ev := s.header(event.KindHugetlb, eventHdr(r.Hdr))
	h := &event.Hugetlb{
		Size: r.Size, Flags: event.Hex(r.Flags), Result: r.Ret,
		OK:               r.Ret >= 0 || r.Ret < -4095,
		HugeRequest:      hugetlbHugetlbNote(r.Note)&hugetlbHugetlbNoteNOTE_HUGE_REQUEST != 0,
		AfterHugeFailure: hugetlbHugetlbNote(r.Note)&hugetlbHugetlbNoteNOTE_AFTER_HUGE_FAIL != 0,
		DurationNs:       r.DurationNs,
	}
	switch hugetlbHugetlbCall(r.Call) {
	case hugetlbHugetlbCallCALL_SHMGET:
		h.Call = event.CallShmget
		key := int64(int32(r.Key)) // key_t is an int
		h.Key = &key
		if h.OK {
			id := r.Ret
			h.ShmID = &id
		}
	case hugetlbHugetlbCallCALL_MMAP:
		h.Call = event.CallMmap
		fd := int32(r.Arg)
		h.Fd = &fd
		h.ProtBits = uint32(r.Key)
		if h.OK {
			a := event.Hex(uint64(r.Ret))
			h.Address = &a
		}
	case hugetlbHugetlbCallCALL_SHMAT:
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
