package loader

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/decode/decode"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
)

// The hugefault family (bpf/hugefault.c): faults on hugetlb mappings that
// got no page (SIGBUS, VM_FAULT_OOM), with the mapping, the pool, the
// hugetlbfs limit and the hugetlb cgroup's counters read at the failure.
// Failures are rare and each matters, so every one is an event; it keeps
// no aggregates.

func init() {
	register(family{
		signal:      event.SignalHugefault,
		load:        loadHugefaultSpec,
		ringbuf:     hugefaultMapHugefaultEvents,
		stats:       hugefaultMapHugefaultStats,
		candidates:  func(Config) ([]candidate, error) { return hugefaultCandidates(), nil },
		decode:      decodeHugefault,
		kernelNames: hugefaultNames,
	})
}

func loadHugefaultSpec() (*ebpf.CollectionSpec, error) {
	return loadChecked("hugefault", loadHugefault, &hugefaultSpecs{})
}

// needFunc refuses a candidate on a kernel whose BTF lacks fn.
func needFunc(fn, hook string) func(*ebpf.CollectionSpec, *btf.Spec) (string, error) {
	return func(_ *ebpf.CollectionSpec, kernel *btf.Spec) (string, error) {
		var f *btf.Func
		if kernel.TypeByName(fn, &f) != nil {
			return "", fmt.Errorf("%s is not in kernel BTF", fn)
		}
		return hook, nil
	}
}

// hugefaultLocklessHook names the signal hook without bpf_find_vma apart
// from the one with it (Config.DisableHooks takes either name).
const hugefaultLocklessHook = "tp_btf/signal_generate (lockless VMA)"

// hasMember reports whether the kernel's struct name has a member member,
// also inside its anonymous structs and unions (6.1's mm_struct keeps
// mm_mt in one).
func hasMember(kernel *btf.Spec, name, member string) bool {
	var st *btf.Struct
	if kernel.TypeByName(name, &st) != nil {
		return false
	}
	return findMember(st.Members, member, 4)
}

func findMember(members []btf.Member, name string, depth int) bool {
	for _, m := range members {
		if m.Name == name {
			return true
		}
		if m.Name != "" || depth == 0 {
			continue
		}
		switch t := btf.UnderlyingType(m.Type).(type) {
		case *btf.Struct:
			if findMember(t.Members, name, depth-1) {
				return true
			}
		case *btf.Union:
			if findMember(t.Members, name, depth-1) {
				return true
			}
		}
	}
	return false
}

func hugefaultCandidates() []candidate {
	return []candidate{
		{
			// The fault's own result: also VM_FAULT_OOM, and faults the
			// kernel makes for the process (which send no signal).
			name: "fexit/hugetlb_fault", programs: []string{hugefaultProgHugetlbFaultExit},
			prepare: needFunc("hugetlb_fault", "fexit/hugetlb_fault"),
			attach:  fexitLinks(hugefaultProgHugetlbFaultExit),
		},
		{
			name: "tp_btf/signal_generate", programs: []string{hugefaultProgSigbusBtf},
			note:    "SIGBUS of user-mode faults on hugetlb mappings (bpf_find_vma: 5.17+; the mapping read without the mmap lock when the helper finds it taken)",
			prepare: needFunc("bpf_find_vma", "tp_btf/signal_generate"),
			attach:  tpBTF(hugefaultProgSigbusBtf),
		},
		{
			// Without bpf_find_vma (5.10 to 5.16): the VMA from the
			// task's VMA cache, which the fault filled, read without
			// the mmap lock. (The preferred hook reads it so too, or
			// from 6.1's maple tree, when the helper finds the lock
			// taken.)
			name: hugefaultLocklessHook, programs: []string{hugefaultProgSigbusBtfLockless},
			note: "SIGBUS of user-mode faults on hugetlb mappings, the mapping from the task's VMA cache (before 6.1), read without the mmap lock",
			prepare: func(_ *ebpf.CollectionSpec, kernel *btf.Spec) (string, error) {
				if !hasMember(kernel, "task_struct", "vmacache") {
					return "", fmt.Errorf("task_struct.vmacache is not in kernel BTF (gone in 6.1, where bpf_find_vma is)")
				}
				return "tp_btf/signal_generate", nil
			},
			attach: tpBTF(hugefaultProgSigbusBtfLockless),
		},
		{
			name: "tracepoint/signal/signal_generate", programs: []string{hugefaultProgSigbusTp}, needsTracefs: true,
			note: "SIGBUS of user-mode faults on hugetlb mappings, the address from x86's thread.cr2 (bpf_find_vma: 5.17+)",
			prepare: func(spec *ebpf.CollectionSpec, kernel *btf.Spec) (string, error) {
				// The classic record has no address: only x86 keeps the
				// fault's in the task (thread.cr2).
				if runtime.GOARCH != "amd64" {
					return "", fmt.Errorf("the fault address comes from x86's thread.cr2, which %s has not", runtime.GOARCH)
				}
				return needFunc("bpf_find_vma", "tracepoint/signal/signal_generate")(spec, kernel)
			},
			attach: tracepoints(map[string][2]string{hugefaultProgSigbusTp: {"signal", "signal_generate"}}),
		},
	}
}

// hugefaultNames gives the decoder the reader of hugetlb cgroups, which
// names the cgroup of a failure and reads its limits as the event arrives.
func hugefaultNames(_ *btf.Spec, d *decode.Decoder) {
	hs, err := hugetlbcg.Hierarchies("/proc/self/mountinfo")
	if err != nil || len(hs) == 0 {
		return
	}
	h := hs[0]
	res := cgroup.NewResolver(h.Root)
	d.HugetlbCgroup = func(id, pageSize uint64) (string, *event.HugetlbCounters) {
		p := res.Path(id)
		if p == "" || pageSize == 0 {
			return p, nil
		}
		l, err := hugetlbcg.Read(h, p, pageSize)
		if err != nil {
			return p, nil
		}
		return p, &event.HugetlbCounters{
			Usage: l.Usage, Limit: l.Limit, RsvdUsage: l.RsvdUsage, RsvdLimit: l.RsvdLimit,
			LimitFile: l.LimitFile, RsvdLimitFile: l.RsvdLimitFile, Failures: l.Failures,
		}
	}
}

// Reservation flags of a private hugetlb mapping (mm/hugetlb.c).
const (
	hpageResvOwner    = 1
	hpageResvUnmapped = 2
	vmMayshare        = 0x80
	vmNoreserve       = 0x200000
)

func decodeHugefault(s *Session, raw []byte) (event.Event, error) {
	var r hugefaultHugefaultEvent
	if err := decodeRecord(raw, &r); err != nil {
		return event.Event{}, err
	}
	ev := s.header(event.KindHugeFault, eventHdr(r.Hdr))
	f := &event.HugeFault{
		Address: event.Hex(r.Address),
		Mapping: event.HugeMapping{
			Start: event.Hex(r.VmStart), End: event.Hex(r.VmEnd), Size: r.VmEnd - r.VmStart,
			PageSize: r.PageSize, Flags: event.Hex(r.VmFlags), Shared: r.VmFlags&vmMayshare != 0,
			Offset: r.VmPgoff * 4096, File: commString(r.File[:]), Inode: r.Ino,
		},
		Pool: event.HugeFaultPool{
			Total: r.PoolTotal, Free: r.PoolFree, Reserved: r.PoolResv,
			Surplus: r.PoolSurplus, Overcommit: r.PoolOvercommit,
			NodeFree: append([]uint32(nil), r.NodeFree[:min(onlineNodes(), len(r.NodeFree))]...),
		},
		Node:        r.NumaNode,
		Reservation: reservation(r.VmFlags, r.ResvFlags),
	}
	switch hugefaultHugefaultSource(r.Source) {
	case hugefaultHugefaultSourceSOURCE_SIGBUS:
		f.Source, f.Result = "sigbus", "SIGBUS"
		res := r.SigResult
		f.SignalResult = &res
	default:
		f.Source = "fault_return"
		f.Result = "VM_FAULT_SIGBUS"
		if r.FaultRet&1 != 0 {
			f.Result = "VM_FAULT_OOM"
		}
	}
	if r.SpoolMax >= 0 {
		f.FSLimit = &event.HugeFSLimit{Max: r.SpoolMax, Used: r.SpoolUsed}
	}
	if r.HcgId != 0 {
		f.Cgroup = &event.HugetlbCgroup{ID: r.HcgId}
		if r.HcgUsage >= 0 {
			f.Cgroup.AtFault = &event.HugetlbCounters{Usage: uint64(r.HcgUsage) * 4096, Limit: pagesLimit(r.HcgMax)}
			if r.HcgRsvdUsage >= 0 {
				u := uint64(r.HcgRsvdUsage) * 4096
				f.Cgroup.AtFault.RsvdUsage, f.Cgroup.AtFault.RsvdLimit = &u, pagesLimit(r.HcgRsvdMax)
			}
		}
	}
	ev.HugeFault = f
	return ev, nil
}

// pagesLimit converts a page_counter max in base pages to bytes; the
// kernel's PAGE_COUNTER_MAX (no limit) becomes nil.
func pagesLimit(pages int64) *uint64 {
	if pages < 0 || uint64(pages) >= (uint64(1)<<62)/4096 {
		return nil
	}
	b := uint64(pages) * 4096
	return &b
}

func reservation(vmFlags uint64, resv uint32) string {
	switch {
	case vmFlags&vmNoreserve != 0:
		return "noreserve"
	case vmFlags&vmMayshare != 0:
		return "reserved"
	case resv&hpageResvUnmapped != 0:
		return "unmapped_by_owner"
	case resv&hpageResvOwner == 0:
		return "not_owner"
	}
	return "reserved"
}

var (
	nodesOnce sync.Once
	nodesN    int
)

// onlineNodes is the number of NUMA nodes up to the highest online one
// (/sys/devices/system/node/online: "0", "0-1", "0,2-3"), at least 1.
func onlineNodes() int {
	nodesOnce.Do(func() {
		nodesN = 1
		b, err := os.ReadFile("/sys/devices/system/node/online")
		if err != nil {
			return
		}
		for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
			_, hi, found := strings.Cut(part, "-")
			if !found {
				hi = part
			}
			if n, err := strconv.Atoi(hi); err == nil && n+1 > nodesN {
				nodesN = n + 1
			}
		}
	})
	return nodesN
}
