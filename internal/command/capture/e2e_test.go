package capture

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// probes starts real probes for the tests, as cmd/memtrace does.
func probes(cfg loader.Config) func(event.Naming) (event.Source, error) {
	return func(n event.Naming) (event.Source, error) {
		s, err := loader.Start(cfg, n)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// startCapture runs a capture until the returned stop function is called.
func startCapture(t *testing.T, cfg loader.Config) (stop func() *Document) {
	t.Helper()
	return startCaptureWith(t, cfg, nil)
}

// startCaptureWith is startCapture, calling onReady with the session
// once it is attached (before it returns).
func startCaptureWith(t *testing.T, cfg loader.Config, onReady func(event.Source)) (stop func() *Document) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	type result struct {
		doc *Document
		err error
	}
	res := make(chan result, 1)
	go func() {
		doc, err := Run(ctx, Options{Start: probes(cfg), MaxEvents: 100000, Version: "test", OnReady: func(s event.Source) {
			if onReady != nil {
				onReady(s)
			}
			close(ready)
		}})
		res <- result{doc, err}
	}()
	select {
	case <-ready:
	case r := <-res:
		cancel()
		t.Fatalf("capture did not start: %v", r.err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("capture did not attach within 30s")
	}
	return func() *Document {
		cancel()
		r := <-res
		if r.err != nil {
			t.Fatalf("capture failed: %v", r.err)
		}
		if r.doc.StopReason != "signal" {
			t.Errorf("stop_reason %q, want signal (context cancelled)", r.doc.StopReason)
		}
		return r.doc
	}
}

func hugetlbEvents(doc *Document, pid int) []*event.Hugetlb {
	var out []*event.Hugetlb
	for _, ev := range doc.Events {
		if ev.Kind == event.KindHugetlb && int(ev.Pid) == pid {
			out = append(out, ev.Hugetlb)
		}
	}
	return out
}

// TestCaptureHugePageRequests provokes real shmget(SHM_HUGETLB) and
// mmap(MAP_HUGETLB) requests that succeed (a small pool reserved for the
// test) and fail with ENOMEM (empty pool), and a silent fallback, and
// checks each appears with the right pid, comm, size, flags and result.
func TestCaptureHugePageRequests(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalHugetlb}
	stop := startCapture(t, cfg)

	restore, err := provoke.ReserveHugePages(2048, 4)
	if err != nil {
		stop()
		t.Fatalf("reserving huge pages: %v", err)
	}
	okShm, err1 := provoke.Huge(provoke.HugeRequest{Op: provoke.ShmAttach, Pages: 2}, provoke.WithComm("mt-shm-ok"))
	okMmap, err2 := provoke.Huge(provoke.HugeRequest{Op: provoke.Mmap, Pages: 2}, provoke.WithComm("mt-mmap-ok"))
	if err := restore(); err != nil {
		t.Errorf("restoring pool: %v", err)
	}
	// An empty pool, held against other test processes changing it.
	restore, err = provoke.ReserveHugePages(2048, 0)
	if err != nil {
		stop()
		t.Fatalf("emptying huge page pool: %v", err)
	}
	failShm, err3 := provoke.Huge(provoke.HugeRequest{Op: provoke.ShmGet, Pages: 2}, provoke.WithComm("mt-shm-fail"))
	fallback, err4 := provoke.Huge(provoke.HugeRequest{Op: provoke.MmapFallback, Pages: 2}, provoke.WithComm("mt-fallback"))
	if err := restore(); err != nil {
		t.Errorf("restoring pool: %v", err)
	}
	doc := stop()
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	privtest.RequireAttached(t, doc.Hooks, event.SignalHugetlb)

	check := func(name string, rep provoke.Report, call event.Call, wantOK bool, wantFlag string) *event.Hugetlb {
		t.Helper()
		evs := hugetlbEvents(doc, rep.Pid)
		for _, h := range evs {
			if h.Call != call || !h.HugeRequest {
				continue
			}
			if h.Size != 4<<20 {
				t.Errorf("%s: size %d, want %d", name, h.Size, 4<<20)
			}
			if !strings.Contains(h.FlagNames, wantFlag) {
				t.Errorf("%s: flags %q lack %s", name, h.FlagNames, wantFlag)
			}
			if h.OK != wantOK {
				t.Errorf("%s: ok = %v (result %d %s), want %v", name, h.OK, h.Result, h.Errno, wantOK)
			}
			if !wantOK && h.Errno != "ENOMEM" {
				t.Errorf("%s: errno %q, want ENOMEM", name, h.Errno)
			}
			if h.HugePageSize != 2<<20 {
				t.Errorf("%s: huge page size %d, want 2 MiB", name, h.HugePageSize)
			}
			return h
		}
		t.Fatalf("%s: no %s huge-page event for pid %d (comm %s) among %d events", name, call, rep.Pid, rep.Comm, len(doc.Events))
		return nil
	}
	h := check("shmget ok", okShm, event.CallShmget, true, "SHM_HUGETLB")
	if h.ShmID == nil {
		t.Error("shmget ok: no shmid")
	}
	check("mmap ok", okMmap, event.CallMmap, true, "MAP_HUGETLB")
	check("shmget ENOMEM", failShm, event.CallShmget, false, "SHM_HUGETLB")
	check("mmap ENOMEM", fallback, event.CallMmap, false, "MAP_HUGETLB")

	// shmat links the segment to the process that attached it.
	var attached bool
	for _, h := range hugetlbEvents(doc, okShm.Pid) {
		if h.Call == event.CallShmat && h.OK && h.ShmID != nil && h.Address != nil {
			attached = true
		}
	}
	if !attached {
		t.Error("no successful shmat event for the attached segment")
	}

	// The silent fallback: the same mapping without MAP_HUGETLB, marked.
	var fell bool
	for _, h := range hugetlbEvents(doc, fallback.Pid) {
		if h.Call == event.CallMmap && !h.HugeRequest && h.AfterHugeFailure && h.OK && h.Size == 4<<20 {
			fell = true
		}
	}
	if !fell {
		t.Errorf("fallback mapping not marked after_huge_failure: %+v", hugetlbEvents(doc, fallback.Pid))
	}
	for _, rep := range []provoke.Report{okShm, okMmap, failShm, fallback} {
		for _, ev := range doc.Events {
			if int(ev.Pid) == rep.Pid && ev.Comm != rep.Comm {
				t.Errorf("pid %d: comm %q, want %q", rep.Pid, ev.Comm, rep.Comm)
			}
		}
	}
	var p *Process
	for i := range doc.Processes {
		if int(doc.Processes[i].Pid) == fallback.Pid {
			p = &doc.Processes[i]
		}
	}
	if p == nil || p.HugetlbFailures != 1 || p.HugetlbFallbacks != 1 {
		t.Errorf("process summary of the fallback: %+v", p)
	}
}

// TestCaptureAllocationFailures provokes real page-allocation failures
// (mm_page_alloc with no page, from a memory cgroup at its limit) and
// checks memtrace's exact count against a tracefs counter of the same
// tracepoint for the same thread, with order, flags and context.
func TestCaptureAllocationFailures(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	stop := startCapture(t, cfg)
	rep, err := provoke.AllocFailures(20, provoke.WithComm("mt-allocfail"))
	doc := stop()
	if err != nil {
		t.Fatal(err)
	}
	privtest.RequireAttached(t, doc.Hooks, event.SignalAlloc)
	var count uint64
	for _, a := range doc.AllocFailures {
		if int(a.Pid) != rep.Pid {
			continue
		}
		count += a.Count
		if a.Comm != rep.Comm {
			t.Errorf("comm %q, want %q", a.Comm, rep.Comm)
		}
		if a.Context != event.ContextProcess {
			t.Errorf("context %s, want process", a.Context)
		}
		if a.GFP == "" || a.GFPClass == "" {
			t.Errorf("flags %s not decoded", a.GFPFlags)
		}
		if !strings.Contains(a.GFP, "ACCOUNT") {
			t.Errorf("flags %s (%s): a memory-cgroup charge failure should be an accounted allocation", a.GFPFlags, a.GFP)
		}
		found := false
		for _, o := range rep.Orders {
			if uint32(o) == a.Order {
				found = true
			}
		}
		if !found {
			t.Errorf("order %d not among the orders tracefs saw: %v", a.Order, rep.Orders)
		}
		if len(a.Stack) == 0 {
			t.Errorf("no kernel stack for stack id %d", a.StackID)
		}
	}
	t.Logf("pid %d %s: %s ×%d (%d failed): memtrace counted %d, tracefs %d, orders %v, flags %v",
		rep.Pid, rep.Comm, rep.Syscall, rep.Attempts, rep.Failed, count, rep.Events, rep.Orders, rep.GFPFlags)
	if count != rep.Events {
		t.Errorf("memtrace counted %d failures for pid %d, the tracefs counter %d (%s, %d attempts, %d failed)",
			count, rep.Pid, rep.Events, rep.Syscall, rep.Attempts, rep.Failed)
	}
	if count < 20 {
		t.Errorf("only %d failures counted, provoked at least 20", count)
	}
	var evs int
	for _, ev := range doc.Events {
		if ev.Kind == event.KindAllocFailure && int(ev.Pid) == rep.Pid {
			evs++
			if ev.AllocFailure.Order != uint32(rep.Orders[0]) && len(rep.Orders) == 1 {
				t.Errorf("event order %d, want %d", ev.AllocFailure.Order, rep.Orders[0])
			}
		}
	}
	if evs == 0 {
		t.Error("no individual allocation-failure events")
	}
	if st := doc.Stats[event.SignalAlloc]; st.Lost != 0 {
		t.Errorf("lost %d events in a quiet test", st.Lost)
	}
}

// TestCaptureExtfrag provokes real fragmentation fallbacks and checks
// memtrace counted the child's events exactly as tracefs did.
func TestCaptureExtfrag(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalExtfrag}
	stop := startCapture(t, cfg)
	rep, err := provoke.ExtFrag(1, provoke.WithComm("mt-extfrag"))
	doc := stop()
	if err != nil {
		t.Fatal(err)
	}
	privtest.RequireAttached(t, doc.Hooks, event.SignalExtfrag)
	var count uint64
	for _, x := range doc.Extfrag {
		if int(x.Pid) != rep.Pid {
			continue
		}
		count += x.Count
		if x.AllocMigratetypeName == "" || x.FallbackMigratetypeName == "" {
			t.Errorf("migratetypes not named: %+v", x)
		}
	}
	t.Logf("pid %d %s: memtrace counted %d extfrag events, tracefs %d (%s)", rep.Pid, rep.Comm, count, rep.Events, rep.Duration)
	if count != rep.Events {
		t.Errorf("memtrace counted %d extfrag events for pid %d, tracefs %d", count, rep.Pid, rep.Events)
	}
	if count == 0 {
		t.Error("no extfrag event counted")
	}
}
