package provoke

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/pkg/kmsg"
)

const (
	warnXattrSize = 64 << 10 // XATTR_SIZE_MAX: order 5 for the kmalloc try
	// warn_alloc lets one report through per 10 s (nopage_rs), system-wide.
	warnRatelimit = 10 * time.Second

	// oversizeFds is the largest fd table whose array (8 bytes per fd)
	// kvmalloc still hands to vmalloc: kvmalloc_node refuses sizes above
	// INT_MAX itself, with a WARN_ON_ONCE splat (and a taint) instead of
	// warn_alloc. alloc_fdtable caps the table at fs.nr_open rounded up
	// to a multiple of 64, so this is a multiple of 64: 2147483136 bytes.
	oversizeFds = (1<<31 - 1) / 8 &^ 63
	nrOpenPath  = "/proc/sys/fs/nr_open"
)

// WarnAllocFailure makes an allocation failure reach warn_alloc() without
// __GFP_NOWARN, so the kernel logs, for the child's worker thread, a
// "vmalloc error" line followed by a stack trace and Mem-Info. It reads
// /dev/kmsg (without clearing anything) until that line appears and
// returns it in Report.Warning; Report.Events counts the mm_page_alloc
// failures and Report.Trigger says which of two mechanisms was used:
//
// "oversize", on machines with less than 2 GiB of memory (test VMs): the
// child grows its fd table to oversizeFds descriptors (fs.nr_open is raised
// for the call and restored), an 8*n-byte kvmalloc(GFP_KERNEL_ACCOUNT).
// The kmalloc try (order 19, __GFP_NOWARN) is refused before the
// allocator's tracepoint, then __vmalloc_node_range refuses the size as
// larger than the machine:
//
//	<comm>: vmalloc error: size 2147483136, exceeds total pages, mode:0x400cc0(GFP_KERNEL_ACCOUNT), …
//
// ("vmalloc: allocation failure: 2147483136 bytes" before 5.14).
// This works on every kernel and needs no memory cgroup. Report.Events is
// 0 (a hook on the allocator function, fexit, does see the order-19 try).
//
// "fdtable" or "xattr", elsewhere (cgroup v1 only): the worker thread fills
// a memory cgroup (pipe resizes, as PipeResize), then makes an accounted
// kvmalloc that falls back to vmalloc, whose order-0 pages fail their
// charge:
//
//	<comm>: vmalloc error: size N, failed to allocate pages, mode:0x400cc2(GFP_KERNEL_ACCOUNT|__GFP_HIGHMEM), …
//
// The call is dup2(0, RLIMIT_NOFILE-1) (alloc_fdtable, since 4.5) or,
// where that does not fail, a 64 KiB "user." xattr on a memfd (shmem's
// simple_xattr_alloc, from 6.6). 6.1's __vmalloc_area_node adds
// __GFP_NOWARN to the mask it passes to warn_alloc (6.18's does not), so
// there this path never logs; only "oversize" does.
//
// warn_alloc is rate limited to one report per 10 s system-wide, so the
// attempt is repeated every second until the line shows up or the timeout
// (default 15 s, WithTimeout) passes; calls in one process, and across
// processes using this package, are serialized.
func WarnAllocFailure(opts ...Option) (rep Report, err error) {
	cfg := newConfig("mt-warnalloc", warnRatelimit+5*time.Second, opts)
	start := time.Now()
	oversize, err := oversizePossible()
	if err != nil {
		return rep, err
	}
	var h hierarchy
	if !oversize {
		if h, err = memoryHierarchy(); err != nil {
			return rep, err
		}
		if h.v2 {
			return rep, fmt.Errorf("provoking warn_alloc: %w: needs the cgroup v1 memory controller (or less than 2 GiB of memory)", errors.ErrUnsupported)
		}
	}
	unlock, err := lockFile("warnalloc", cfg.timeout)
	if err != nil {
		return rep, err
	}
	defer unlock()
	kmsg, err := openKmsg()
	if err != nil {
		return rep, err
	}
	defer kmsg.close()

	limit := int64(pipeResizeLimit)
	if oversize {
		limit = 0 // no cgroup
	}
	s, err := newSession(h, cfg, limit, true)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	if err := s.count("kmem", "mm_page_alloc", PageAllocFailureFilter); err != nil {
		return rep, err
	}
	type trigger struct{ name, desc string }
	var calls []trigger
	args := failArgs{Thread: true}
	if oversize {
		restore, err := raiseNrOpen(oversizeFds)
		if err != nil {
			return rep, err
		}
		defer func() { err = errors.Join(err, restore()) }()
		args.Fds = oversizeFds
		calls = []trigger{{"oversize", fmt.Sprintf("dup2(0, %d) growing the fd table beyond the machine's memory", oversizeFds-1)}}
	} else {
		args.Pipes, args.PipeSize, args.XattrSize = pipeResizePipes, pipeResizeSize, warnXattrSize
		if err := s.cgroupFiles(&args); err != nil {
			return rep, err
		}
		// The first that fails with ENOMEM in the full cgroup is used.
		calls = []trigger{
			{"fdtable", "dup2(0, RLIMIT_NOFILE-1) growing the fd table"},
			{"xattr", fmt.Sprintf("fsetxattr(memfd, \"user.memtrace\", %d bytes)", warnXattrSize)},
		}
	}
	var tried []string
	deadline := start.Add(cfg.timeout)
	var total failResult
	for {
		args.WarnCall = calls[0].name
		rep.Trigger, rep.Syscall = calls[0].name, calls[0].desc
		var res failResult
		if err := s.child.call("warnfail", args, &res); err != nil {
			return rep, err
		}
		total.Attempts += res.Attempts
		total.Failed += res.Failed
		if res.Errno != 0 {
			return rep, fmt.Errorf("provoking warn_alloc: %s: unexpected errno %d (%v)", res.Call, res.Errno, errnoErr(res.Errno))
		}
		if res.Failed == 0 {
			got := "success"
			if res.XattrErrno != 0 {
				got = errnoErr(res.XattrErrno).Error()
			}
			tried = append(tried, calls[0].desc+": "+got)
			if calls = calls[1:]; len(calls) == 0 {
				return rep, fmt.Errorf("provoking warn_alloc: no call failed with ENOMEM: %s", strings.Join(tried, "; "))
			}
			continue
		}
		// printk is synchronous for the record, so it is there by now;
		// the short wait only covers a slow console flush.
		for wait := time.Now().Add(200 * time.Millisecond); rep.Warning == "" && time.Now().Before(wait); {
			msgs, err := kmsg.messages()
			if err != nil {
				return rep, err
			}
			for _, m := range msgs {
				if warnedBy(m, s.child.Comm) {
					rep.Warning = m
					break
				}
			}
			if rep.Warning == "" {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if rep.Warning != "" || time.Now().Add(time.Second).After(deadline) {
			break
		}
		time.Sleep(time.Second) // rate limited: someone warned in the last 10 s
	}
	if err := s.finish(&rep, total, start); err != nil {
		return rep, err
	}
	if rep.Warning == "" {
		return rep, fmt.Errorf("provoking warn_alloc: %d calls (%s) failed with ENOMEM but no warning from %q reached the kernel log within %v (rate limited?)",
			total.Failed, rep.Syscall, s.child.Comm, cfg.timeout)
	}
	return rep, nil
}

// warnedBy reports whether a kernel log message is warn_alloc's report
// of a failure by comm, in any kernel's form (pkg/kmsg reads them).
func warnedBy(msg, comm string) bool {
	kind, c, ok := kmsg.FailureLine(msg)
	return ok && kind != kmsg.KindStall && c == comm
}

// oversizePossible reports whether an fd table of oversizeFds descriptors
// is larger than the machine's memory, the test vmalloc applies
// ((size >> PAGE_SHIFT) > totalram_pages()).
func oversizePossible() (bool, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return false, fmt.Errorf("reading the machine's memory size: %w", err)
	}
	ram := uint64(si.Totalram) * uint64(max(si.Unit, 1))
	return uint64(oversizeFds*8)/4096 > ram/4096, nil
}

// raiseNrOpen sets fs.nr_open to n, if lower, and returns how to restore it.
func raiseNrOpen(n int) (restore func() error, err error) {
	b, err := os.ReadFile(nrOpenPath)
	if err != nil {
		return nil, fmt.Errorf("reading fs.nr_open: %w", err)
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("reading fs.nr_open: %q: %w", b, err)
	}
	if old >= n {
		return func() error { return nil }, nil
	}
	if err := os.WriteFile(nrOpenPath, []byte(strconv.Itoa(n)), 0); err != nil {
		return nil, fmt.Errorf("raising fs.nr_open to %d: %w", n, err)
	}
	return func() error {
		if err := os.WriteFile(nrOpenPath, b, 0); err != nil {
			return fmt.Errorf("restoring fs.nr_open to %d: %w", old, err)
		}
		return nil
	}, nil
}
