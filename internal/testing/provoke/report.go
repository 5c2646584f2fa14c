package provoke

import (
	"slices"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/internal/probe/tracefs"
)

// Report describes what a provoking function did and what the kernel's
// tracepoints showed for it.
type Report struct {
	Pid  int    // the child process that made the requests
	Tids []int  // its thread(s) that made them
	Comm string // those threads' name, as tracepoints and /proc show it

	Syscall  string // what was called, e.g. "fcntl(F_SETPIPE_SZ, 1048576)"
	Attempts int    // calls made
	Failed   int    // calls that failed with ENOMEM

	// Events counts the tracepoint hits attributed to Tids, read from a
	// private tracefs instance: mm_page_alloc with pfn == -1UL for the
	// allocation failures, mm_page_alloc_extfrag for ExtFrag.
	Events   uint64
	Orders   []int    // distinct allocation orders of those hits
	GFPFlags []string // distinct gfp_flags of those hits (mm_page_alloc)

	Bytes    uint64 // ExtFrag: unmovable memory held at the end of the fill
	Warning  string // WarnAllocFailure: the warn_alloc line from the kernel log
	Trigger  string // WarnAllocFailure: "oversize", "fdtable" or "xattr" (see there)
	Calls    []Call // Huge: every syscall and its outcome, in order
	Duration time.Duration
}

// Call is one system call made by the child, with its outcome.
type Call struct {
	Name   string        // "shmget", "shmat", "shmdt", "shmctl(IPC_RMID)", "mmap", "munmap"
	Length uint64        // size argument
	Flags  uint64        // flags argument (shmflg or mmap flags)
	Ret    uint64        // shm id or address on success
	Errno  syscall.Errno // 0 on success
}

// Huge reports whether the call asked for huge pages.
func (c Call) Huge() bool {
	switch c.Name {
	case "shmget":
		return c.Flags&shmHugeTLB != 0
	case "mmap":
		return c.Flags&mapHugeTLB != 0
	}
	return false
}

// addHits folds tracepoint hits into the report.
func (r *Report) addHits(hits []tracefs.Hit) {
	for _, h := range hits {
		order := h.Int("order", -1)
		if order < 0 {
			order = h.Int("alloc_order", -1)
		}
		if order >= 0 && !slices.Contains(r.Orders, int(order)) {
			r.Orders = append(r.Orders, int(order))
		}
		if g := h.Fields["gfp_flags"]; g != "" && !slices.Contains(r.GFPFlags, g) {
			r.GFPFlags = append(r.GFPFlags, g)
		}
	}
	slices.Sort(r.Orders)
}
