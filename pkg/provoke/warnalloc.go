package provoke

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

const (
	warnXattrSize = 64 << 10 // XATTR_SIZE_MAX: order 5 for the kmalloc try
	// warn_alloc lets one report through per 10 s (nopage_rs), system-wide.
	warnRatelimit = 10 * time.Second
)

// WarnAllocFailure makes an allocation failure reach warn_alloc(), so the
// kernel logs, for the child's worker thread,
//
//	<comm>: vmalloc error: size N, failed to allocate pages, mode:0x400cc2(GFP_KERNEL_ACCOUNT|__GFP_HIGHMEM), …
//
// followed by a stack trace and Mem-Info. It reads /dev/kmsg (without
// clearing anything) until that line appears and returns it in
// Report.Warning; Report.Events counts the mm_page_alloc failures.
//
// Mechanism: the worker thread fills a memory cgroup (pipe resizes, as
// PipeResize) and then sets a 64 KiB "user." xattr on a memfd. shmem keeps
// xattrs in simple_xattr_alloc, a kvmalloc(GFP_KERNEL_ACCOUNT): the
// kmalloc try (order 5, no reclaim, __GFP_NOWARN) fails its memcg charge,
// then the vmalloc fallback's order-0 pages fail theirs, and vmalloc, asked
// without __GFP_NOWARN, calls warn_alloc. fsetxattr returns ENOMEM. Like
// PipeResize this needs cgroup v1 (the order-0 charges would otherwise
// invoke the memcg OOM killer).
//
// warn_alloc is rate limited to one report per 10 s system-wide, so the
// attempt is repeated every second until the line shows up or the timeout
// (default 15 s, WithTimeout) passes; calls in one process, and across
// processes using this package, are serialized.
func WarnAllocFailure(opts ...Option) (rep Report, err error) {
	cfg := newConfig("mt-warnalloc", warnRatelimit+5*time.Second, opts)
	start := time.Now()
	h, err := memoryHierarchy()
	if err != nil {
		return rep, err
	}
	if h.v2 {
		return rep, fmt.Errorf("provoking warn_alloc: %w: needs the cgroup v1 memory controller", errors.ErrUnsupported)
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

	s, err := newSession(h, cfg, pipeResizeLimit, true)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	if err := s.count("kmem", "mm_page_alloc", PageAllocFailureFilter); err != nil {
		return rep, err
	}
	args := failArgs{Thread: true, Pipes: pipeResizePipes, PipeSize: pipeResizeSize, XattrSize: warnXattrSize}
	if err := s.cgroupFiles(&args); err != nil {
		return rep, err
	}
	// The fd table works on every kernel since 4.5; the xattr only from
	// 6.6, where tmpfs takes user.* xattrs. The first that fails with
	// ENOMEM in the full cgroup is used.
	calls := []struct{ name, desc string }{
		{"fdtable", "dup2(0, RLIMIT_NOFILE-1) growing the fd table"},
		{"xattr", fmt.Sprintf("fsetxattr(memfd, \"user.memtrace\", %d bytes)", warnXattrSize)},
	}
	var tried []string
	prefix := s.child.Comm + ": "
	deadline := start.Add(cfg.timeout)
	var total failResult
	for {
		args.WarnCall = calls[0].name
		rep.Syscall = calls[0].desc
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
				return rep, fmt.Errorf("provoking warn_alloc: no accounted call failed with ENOMEM in a full memory cgroup: %s", strings.Join(tried, "; "))
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
				if strings.HasPrefix(m, prefix) && (strings.Contains(m, "vmalloc error") || strings.Contains(m, "page allocation failure")) {
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
