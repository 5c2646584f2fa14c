package loader

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// candidate is one way of attaching a signal family.
type candidate struct {
	name         string
	programs     []string
	needsTracefs bool
	// tracefsFallback: the attach falls back to tracefs (kprobes without
	// the kprobe PMU). cilium/ebpf looks for tracefs once per process and
	// keeps the answer, so tracefs must be mounted before the first try,
	// or every later tracepoint attach fails too.
	tracefsFallback bool
	note            string
	// prepare adjusts the spec before load (attach targets) and returns the
	// hook's name as it will be attached; it may refuse.
	prepare func(spec *ebpf.CollectionSpec, kernel *btf.Spec) (string, error)
	attach  func(coll *ebpf.Collection) ([]link.Link, error)
}

// attachEach attaches every program with one attach function, all or none.
func attachEach(attach func(prog string, p *ebpf.Program) (link.Link, error), progs ...string) func(*ebpf.Collection) ([]link.Link, error) {
	return func(coll *ebpf.Collection) ([]link.Link, error) {
		var links []link.Link
		for _, prog := range progs {
			l, err := attach(prog, coll.Programs[prog])
			if err != nil {
				closeLinks(links)
				return nil, err
			}
			links = append(links, l)
		}
		return links, nil
	}
}

// tpBTF attaches BTF-typed tracepoint programs (raw tracepoints with BTF).
func tpBTF(progs ...string) func(*ebpf.Collection) ([]link.Link, error) {
	return attachEach(func(name string, p *ebpf.Program) (link.Link, error) {
		l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return nil, fmt.Errorf("attaching tp_btf program %s: %w", name, err)
		}
		return l, nil
	}, progs...)
}

// fexitLinks attaches fentry/fexit programs to the target set at load.
func fexitLinks(progs ...string) func(*ebpf.Collection) ([]link.Link, error) {
	return attachEach(func(name string, p *ebpf.Program) (link.Link, error) {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return nil, fmt.Errorf("attaching tracing program %s: %w", name, err)
		}
		return l, nil
	}, progs...)
}

// tracepoints attaches programs to classic tracepoints (group, name).
func tracepoints(tps map[string][2]string) func(*ebpf.Collection) ([]link.Link, error) {
	progs := make([]string, 0, len(tps))
	for p := range tps {
		progs = append(progs, p)
	}
	sort.Strings(progs)
	return attachEach(func(name string, p *ebpf.Program) (link.Link, error) {
		tp := tps[name]
		l, err := link.Tracepoint(tp[0], tp[1], p, nil)
		if err != nil {
			return nil, fmt.Errorf("attaching tracepoint %s/%s: %w", tp[0], tp[1], err)
		}
		return l, nil
	}, progs...)
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
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

func extfragCandidates() []candidate {
	return []candidate{
		{
			name: "tracepoint/kmem/mm_page_alloc_extfrag", programs: []string{extfragProgExtfragTp}, needsTracefs: true,
			attach: tracepoints(map[string][2]string{extfragProgExtfragTp: {"kmem", "mm_page_alloc_extfrag"}}),
		},
		{
			name: "tp_btf/mm_page_alloc_extfrag", programs: []string{extfragProgExtfragBtf},
			note:   "change_ownership is not known on tp_btf",
			attach: tpBTF(extfragProgExtfragBtf),
		},
	}
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

// warnAllocCompanion marks the failures the kernel writes to its log. It
// needs kprobes, which some kernels lack (this is never fatal).
func warnAllocCompanion() candidate {
	return candidate{
		name:            "kprobe/warn_alloc",
		programs:        []string{allocProgWarnAllocKprobe},
		tracefsFallback: true,
		note:            "failures the kernel logs (page allocation failure, vmalloc error)",
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
