package loader

import (
	"github.com/cilium/ebpf"

	"github.com/memtrace/memtrace/internal/event"
)

// The hugetlb family (bpf/hugetlb.c): huge-page requests through shmget,
// mmap and shmat, and shared mappings made after one failed. It keeps no
// aggregates: every call is an event.

func init() {
	register(family{
		signal:     event.SignalHugetlb,
		load:       loadHugetlbSpec,
		ringbuf:    hugetlbMapHugetlbEvents,
		stats:      hugetlbMapHugetlbStats,
		candidates: func(Config) ([]candidate, error) { return hugetlbCandidates(), nil },
		decode:     decodeHugetlb,
	})
}

func loadHugetlbSpec() (*ebpf.CollectionSpec, error) {
	return loadChecked("hugetlb", loadHugetlb, &hugetlbSpecs{})
}

func hugetlbCandidates() []candidate {
	tps := map[string][2]string{
		hugetlbProgShmgetEnterTp: {"syscalls", "sys_enter_shmget"},
		hugetlbProgShmgetExitTp:  {"syscalls", "sys_exit_shmget"},
		hugetlbProgMmapEnterTp:   {"syscalls", "sys_enter_mmap"},
		hugetlbProgMmapExitTp:    {"syscalls", "sys_exit_mmap"},
		hugetlbProgShmatEnterTp:  {"syscalls", "sys_enter_shmat"},
		hugetlbProgShmatExitTp:   {"syscalls", "sys_exit_shmat"},
		hugetlbProgTaskExitTp:    {"sched", "sched_process_exit"},
	}
	var progs []string
	for p := range tps {
		progs = append(progs, p)
	}
	return []candidate{
		{name: "tracepoint/syscalls/sys_{enter,exit}_{shmget,mmap,shmat}", programs: progs, needsTracefs: true, attach: tracepoints(tps)},
		{
			name:     "tp_btf/sys_enter+sys_exit",
			programs: []string{hugetlbProgSysEnterBtf, hugetlbProgSysExitBtf, hugetlbProgTaskExitBtf},
			note:     "raw syscall hooks run on every system call",
			attach:   tpBTF(hugetlbProgSysEnterBtf, hugetlbProgSysExitBtf, hugetlbProgTaskExitBtf),
		},
	}
}

func decodeHugetlb(s *Session, raw []byte) (event.Event, error) {
	var r hugetlbHugetlbEvent
	if err := decodeRecord(raw, &r); err != nil {
		return event.Event{}, err
	}
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
	return ev, nil
}
