package main

import (
	"fmt"
	"strings"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// summarize checks one capture against the provoke runs.
func (c *tracer) summarize(runs map[string]*provoked) proto.Summary {
	s := proto.Summary{Variant: c.name, Flags: c.flags}
	add := func(name string, ok bool, format string, args ...any) {
		s.Checks = append(s.Checks, proto.Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	if c.startErr != nil {
		add("capture started", false, "%v", c.startErr)
		return s
	}
	if c.stopErr != nil {
		add("capture stopped", false, "%v", c.stopErr)
	}
	doc, err := c.read()
	if err != nil {
		add("capture document", false, "reading %s: %v", c.path, err)
		return s
	}
	s.Kernel = doc.Host.KernelRelease
	for _, h := range doc.Hooks {
		ph := proto.Hook{Signal: string(h.Signal), Hook: h.Hook, Attached: h.Attached}
		for _, co := range h.Companions {
			if co.Attached {
				ph.Companions = append(ph.Companions, co.Hook)
			} else {
				ph.Rejected = append(ph.Rejected, "companion "+co.Hook+": "+co.Reason)
			}
		}
		for _, r := range h.Rejected {
			ph.Rejected = append(ph.Rejected, r.Hook+": "+r.Reason)
		}
		s.Hooks = append(s.Hooks, ph)
		add("hook "+string(h.Signal), h.Attached, "%s", h.Hook)
	}
	add("stopped by SIGINT", doc.StopReason == "signal", "stop_reason %q", doc.StopReason)

	procs := map[int]capture.Process{}
	for _, p := range doc.Processes {
		procs[int(p.Pid)] = p
	}
	// exact compares memtrace's in-kernel count with provoke's tracefs count.
	exact := func(name, run string, got func(capture.Process) uint64) {
		r := runs[run]
		if r.err != nil {
			s.Checks = append(s.Checks, proto.Check{Name: name, Skipped: r.skipped, Detail: r.err.Error()})
			return
		}
		n := got(procs[r.rep.Pid])
		add(name, n == r.rep.Events && n > 0, "memtrace %d, tracefs %d (pid %d)", n, r.rep.Events, r.rep.Pid)
	}
	exact("allocation failures", "alloc", func(p capture.Process) uint64 { return p.AllocFailures })
	exact("extfrag events", "extfrag", func(p capture.Process) uint64 { return p.ExtfragEvents })
	if w := runs["warn"]; w.err == nil && w.rep.Trigger == "oversize" {
		// The oversized fd table's kmalloc try (order 19) is refused
		// before the allocator's tracepoint; fexit, on the function,
		// sees it fail once per call.
		n, want := procs[w.rep.Pid].AllocFailures, w.rep.Events
		hook := allocHook(doc)
		if strings.HasPrefix(hook, "fexit/") {
			want += uint64(w.rep.Failed)
		}
		add("warn_alloc's failures", n == want, "memtrace %d with %s, want %d: tracefs %d (oversize trigger, %d calls; pid %d)",
			n, hook, want, w.rep.Events, w.rep.Failed, w.rep.Pid)
	} else {
		exact("warn_alloc's failures", "warn", func(p capture.Process) uint64 { return p.AllocFailures })
	}
	if w := runs["warn"]; w.err == nil {
		if companion(doc, "kprobe/warn_alloc") {
			n := procs[w.rep.Pid].LoggedFailures
			add("warn_alloc logged", n > 0, "%d failures marked as logged by kprobe/warn_alloc", n)
		} else {
			s.Checks = append(s.Checks, proto.Check{Name: "warn_alloc logged", Skipped: true, Detail: "no kprobe/warn_alloc attached"})
		}
	}

	// Huge-page requests: the sequence of recorded calls per process.
	want := map[string]string{
		"fallback":    "mmap huge ENOMEM, mmap fallback ok",
		"shmget-fail": "shmget huge ENOMEM",
		"shmget-ok":   "shmget huge ok",
		"mmap-ok":     "mmap huge ok",
	}
	for _, run := range []string{"fallback", "shmget-fail", "shmget-ok", "mmap-ok"} {
		r := runs[run]
		if r.err != nil {
			s.Checks = append(s.Checks, proto.Check{Name: "hugetlb " + run, Skipped: r.skipped, Detail: r.err.Error()})
			continue
		}
		got := hugeCalls(doc, r.rep.Pid)
		add("hugetlb "+run, got == want[run], "got %q, want %q (pid %d)", got, want[run], r.rep.Pid)
	}

	var lost uint64
	for _, st := range doc.Stats {
		lost += st.Lost + st.MapFull
	}
	add("nothing lost", lost == 0 && doc.DecodeErrors == 0, "lost+map_full %d, decode errors %d", lost, doc.DecodeErrors)
	return s
}

// allocHook is the hook that counted allocation failures.
func allocHook(doc *capture.Document) string {
	for _, h := range doc.Hooks {
		if h.Signal == "alloc" && h.Attached {
			return h.Hook
		}
	}
	return "(none)"
}

func companion(doc *capture.Document, hook string) bool {
	for _, h := range doc.Hooks {
		for _, c := range h.Companions {
			if c.Attached && c.Hook == hook {
				return true
			}
		}
	}
	return false
}

// hugeCalls describes the huge-page requests and fallbacks of pid.
func hugeCalls(doc *capture.Document, pid int) string {
	var calls []string
	for _, ev := range doc.Events {
		h := ev.Hugetlb
		if ev.Kind != event.KindHugetlb || int(ev.Pid) != pid || h == nil {
			continue
		}
		kind := "plain"
		switch {
		case h.HugeRequest:
			kind = "huge"
		case h.AfterHugeFailure:
			kind = "fallback"
		}
		result := "ok"
		if !h.OK {
			result = h.Errno
		}
		calls = append(calls, fmt.Sprintf("%s %s %s", h.Call, kind, result))
	}
	return strings.Join(calls, ", ")
}
