package provoke

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// PageAllocFailureFilter is the tracefs filter that selects failed
// allocations in kmem:mm_page_alloc: the tracepoint records pfn -1UL when
// the page is NULL, and the filter parser refuses "-1" for an unsigned field.
const PageAllocFailureFilter = "pfn == 18446744073709551615"

// Method is a way to make accounted allocations fail in a memory cgroup.
type Method string

const (
	// Auto picks PipeResize on cgroup v1 and BPFMap on cgroup v2.
	Auto Method = ""

	// PipeResize grows pipes with fcntl(F_SETPIPE_SZ, 1 MiB): the kernel
	// kcallocs 256 struct pipe_buffer (10 KiB, more than the largest
	// kmalloc cache) with GFP_KERNEL_ACCOUNT|__GFP_NOWARN, so it is an
	// order-2 page allocation charged to the caller's memory cgroup. With
	// the cgroup at its limit the charge fails after the page was taken
	// from the buddy allocator; __alloc_frozen_pages_noprof frees it and
	// still fires mm_page_alloc with page == NULL (order 2, gfp_flags
	// 0x442dc0: GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_NOWARN|__GFP_COMP on
	// x86-64 6.18), and fcntl returns ENOMEM. Such an order-2 GFP_KERNEL charge would invoke the memcg OOM
	// killer, so this needs cgroup v1: memory.oom_control turns the OOM
	// killer off, and only the worker thread is moved into the cgroup (v1
	// allows that), so the child's own page faults are never charged to
	// the full cgroup and cannot block in a memcg OOM wait.
	PipeResize Method = "pipe-resize"

	// BPFMap creates BPF array maps larger than the cgroup's limit
	// (needs CAP_BPF or CAP_SYS_ADMIN). bpf_map_area_alloc vmallocs them
	// with __GFP_ACCOUNT|__GFP_RETRY_MAYFAIL|__GFP_NOWARN, page by page:
	// the first page over the limit fails its charge, mm_page_alloc fires
	// with page == NULL (order 0, gfp_flags 0x406dc2: GFP_KERNEL_ACCOUNT|
	// __GFP_HIGHMEM|__GFP_ZERO|__GFP_NOWARN|__GFP_RETRY_MAYFAIL), and bpf
	// returns ENOMEM. A kernel whose vmalloc charges the memory cgroup
	// in bulk after allocating (obj_cgroup_charge_vmalloc, seen in later
	// mm trees) shows no NULL page here; AllocFailures then reports the
	// missing events as an error. RETRY_MAYFAIL
	// charges never invoke the OOM killer, so this works on cgroup v2 and
	// needs no oom_control; the limit keeps megabytes of headroom, so the
	// whole child process can be in the cgroup.
	BPFMap Method = "bpf-map"
)

const (
	pipeResizeLimit = 512 << 10 // filled by ~30 pipe resizes
	pipeResizeSize  = 1 << 20   // default pipe-max-size, 256 slots: order 2
	pipeResizePipes = 128
	bpfMapLimit     = 4 << 20
	bpfMapSize      = 16 << 20 // always more than the limit, never OOM
)

// failArgs and failResult are the child side of AllocFailures.
type failArgs struct {
	Join, Home string // cgroup files to enter and to go back to
	Thread     bool   // move only the worker thread (cgroup v1)
	Pipes      int    // PipeResize: pipes prepared before joining
	PipeSize   int    // PipeResize: F_SETPIPE_SZ argument
	MapSize    int    // BPFMap: bytes of each array map
	Want       int    // failures wanted
	XattrSize  int    // WarnAllocFailure: value size
	WarnCall   string // WarnAllocFailure: "fdtable", "xattr" or "oversize"
	Fds        int    // WarnAllocFailure "oversize": fd table size to ask for
}

type failResult struct {
	Attempts, Succeeded, Failed int
	Errno                       int    // first unexpected errno, 0 if none
	Call                        string // the call that got Errno
	XattrErrno                  int    // WarnAllocFailure: errno of the accounted call
	// NotFull: every resize succeeded, the cgroup never filled (PipeResize).
	NotFull bool
}

// AllocFailures makes a child process's allocations fail n times inside
// the kernel and reports what kmem:mm_page_alloc showed for them (it
// returns an error unless the tracepoint fired with pfn == -1UL at least n
// times from the child's worker thread). It creates a memory cgroup, moves
// the child (or its worker thread) into it, and removes it afterwards.
//
// Pages are taken from the buddy allocator and then refused by the memory
// cgroup charge (__memcg_kmem_charge_page), so the failures are real
// mm_page_alloc events with a NULL page, but the system is never short of
// memory. See Method for the kernel paths; WithMethod chooses one.
func AllocFailures(n int, opts ...Option) (rep Report, err error) {
	cfg := newConfig("mt-allocfail", 30*time.Second, opts)
	if n < 1 {
		return rep, fmt.Errorf("provoking allocation failures: n = %d, want at least 1", n)
	}
	start := time.Now()
	h, err := memoryHierarchy()
	if err != nil {
		return rep, err
	}
	method := cfg.method
	if method == Auto {
		method = PipeResize
		if h.v2 {
			method = BPFMap
		}
	}
	args := failArgs{Want: n}
	var limit int64
	var noOOM bool
	var opName string
	switch method {
	case PipeResize:
		if h.v2 {
			return rep, fmt.Errorf("provoking allocation failures with %s: %w: needs the cgroup v1 memory controller", method, errors.ErrUnsupported)
		}
		limit, noOOM, opName = pipeResizeLimit, true, "pipefail"
		args.Thread, args.Pipes, args.PipeSize = true, pipeResizePipes, pipeResizeSize
		rep.Syscall = fmt.Sprintf("fcntl(F_SETPIPE_SZ, %d)", pipeResizeSize)
	case BPFMap:
		limit, opName = bpfMapLimit, "bpffail"
		args.MapSize = bpfMapSize
		rep.Syscall = fmt.Sprintf("bpf(BPF_MAP_CREATE, array of %d bytes)", bpfMapSize)
	default:
		return rep, fmt.Errorf("provoking allocation failures: unknown method %q", method)
	}

	s, err := newSession(h, cfg, limit, noOOM)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	if err := s.count("kmem", "mm_page_alloc", PageAllocFailureFilter); err != nil {
		return rep, err
	}
	if err := s.cgroupFiles(&args); err != nil {
		return rep, err
	}
	var res failResult
	if err := s.child.call(opName, args, &res); err != nil {
		return rep, err
	}
	if res.NotFull && args.Thread {
		// The kernel charged the worker's allocations elsewhere: before
		// about 5.11 kernel memory is charged to the cgroup of the mm's
		// owner (the main thread), not the allocating thread's. Move the
		// whole child instead; its other threads do not fault in new
		// memory while the cgroup is full.
		args.Thread = false
		if err := s.cgroupFiles(&args); err != nil {
			return rep, err
		}
		tried := res
		if err := s.child.call(opName, args, &res); err != nil {
			return rep, err
		}
		res.Attempts += tried.Attempts
		res.Succeeded += tried.Succeeded
	}
	if res.NotFull {
		return rep, fmt.Errorf("provoking allocation failures: memory cgroup not full after %d pipe resizes", res.Succeeded)
	}
	if method == BPFMap && res.Errno == int(unix.EPERM) {
		// Before 5.11 map memory counts against RLIMIT_MEMLOCK, and
		// the memory cgroup never sees it.
		return rep, fmt.Errorf("provoking allocation failures with %s: %w: this kernel charges BPF maps to RLIMIT_MEMLOCK, not to the memory cgroup (before 5.11)", method, errors.ErrUnsupported)
	}
	if err := s.finish(&rep, res, start); err != nil {
		return rep, err
	}
	switch {
	case res.Errno != 0:
		return rep, fmt.Errorf("provoking allocation failures: %s: unexpected errno %d (%v)", res.Call, res.Errno, errnoErr(res.Errno))
	case res.Failed < n:
		return rep, fmt.Errorf("provoking allocation failures: only %d of %d calls failed with ENOMEM", res.Failed, res.Attempts)
	case rep.Events < uint64(n):
		return rep, fmt.Errorf("provoking allocation failures: %d calls failed but mm_page_alloc showed only %d failed allocations", res.Failed, rep.Events)
	}
	return rep, nil
}
