package loader_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestEveryHookWithRealEvents attaches each signal through its preferred
// hook and, with that hook type disabled, through its fallback, and checks
// each path counts real kernel events exactly as tracefs does. On this
// kind of kernel (BTF, tracefs mountable) every one of them must attach.
func TestEveryHookWithRealEvents(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	// Each case forces one path; "preferred" is what auto picks here.
	cases := []struct {
		name    string
		disable []string
		want    map[event.Signal][]string // acceptable hook prefixes
	}{
		{"preferred", nil, map[event.Signal][]string{
			event.SignalAlloc:      {"fexit/", "tp_btf/mm_page_alloc"},
			event.SignalExtfrag:    {"tracepoint/kmem/mm_page_alloc_extfrag"},
			event.SignalHugetlb:    {"tracepoint/syscalls/"},
			event.SignalReclaim:    {"tp_btf/mm_vmscan_*"},
			event.SignalCompaction: {"tp_btf/mm_compaction_*"},
			event.SignalHugefault:  {"fexit/hugetlb_fault", "tp_btf/signal_generate"},
		}},
		{"tp_btf", []string{"fexit", "tracepoint"}, map[event.Signal][]string{
			event.SignalAlloc:      {"tp_btf/mm_page_alloc"},
			event.SignalExtfrag:    {"tp_btf/mm_page_alloc_extfrag"},
			event.SignalHugetlb:    {"tp_btf/sys_enter+sys_exit"},
			event.SignalReclaim:    {"tp_btf/mm_vmscan_*"},
			event.SignalCompaction: {"tp_btf/mm_compaction_*"},
			event.SignalHugefault:  {"tp_btf/signal_generate"},
		}},
		{"tracepoint", []string{"fexit", "tp_btf"}, map[event.Signal][]string{
			event.SignalAlloc:      {"tracepoint/kmem/mm_page_alloc"},
			event.SignalExtfrag:    {"tracepoint/kmem/mm_page_alloc_extfrag"},
			event.SignalHugetlb:    {"tracepoint/syscalls/"},
			event.SignalReclaim:    {"tracepoint/vmscan/mm_vmscan_*"},
			event.SignalCompaction: {"tracepoint/compaction/mm_compaction_*"},
			event.SignalHugefault:  {"tracepoint/signal/signal_generate"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := loader.DefaultConfig()
			cfg.DisableHooks = c.disable
			s, err := loader.Start(cfg, loader.Naming{})
			if err != nil {
				t.Fatal(err)
			}
			ids, err := s.ProgramIDs()
			if err != nil {
				t.Fatal(err)
			}
			defer assertGone(t, ids)
			defer s.Close()
			events := drain(s)
			for _, h := range s.Hooks() {
				if h.Signal == event.SignalHugefault && !h.Attached && noFindVMA(h) {
					t.Logf("hugefault: no hook here without fexit: the signal hooks need bpf_find_vma (5.17+), the classic one x86 (rejected: %+v)", h.Rejected)
					continue
				}
				ok := false
				for _, w := range c.want[h.Signal] {
					ok = ok || strings.HasPrefix(h.Hook, w)
				}
				if !h.Attached || !ok {
					t.Fatalf("%s: hook %q attached=%v, want one of %q (rejected: %+v)", h.Signal, h.Hook, h.Attached, c.want[h.Signal], h.Rejected)
				}
			}
			alloc, err := provoke.AllocFailures(10, provoke.WithComm("mt-hook-alloc"))
			if err != nil {
				t.Fatal(err)
			}
			frag, err := provoke.ExtFrag(1, provoke.WithComm("mt-hook-frag"))
			if err != nil {
				t.Fatal(err)
			}
			restore, err := provoke.ReserveHugePages(2048, 0) // empty, held against other tests
			if err != nil {
				t.Fatal(err)
			}
			huge, err := provoke.Huge(provoke.HugeRequest{Op: provoke.MmapFallback}, provoke.WithComm("mt-hook-huge"))
			if rerr := restore(); rerr != nil {
				t.Error(rerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			var hugeEvents []event.Event
			for _, ev := range events() {
				if ev.Kind == event.KindHugetlb && int(ev.Pid) == huge.Pid {
					hugeEvents = append(hugeEvents, ev)
				}
				if ev.Kind == event.KindAllocFailure && int(ev.Pid) == alloc.Pid && ev.Context != event.ContextProcess {
					t.Errorf("allocation failure in a syscall reported in context %s", ev.Context)
				}
			}
			aggs, err := s.AllocAggregates()
			if err != nil {
				t.Fatal(err)
			}
			var n uint64
			for _, a := range aggs {
				if int(a.Pid) == alloc.Pid {
					n += a.Count
				}
			}
			if n != alloc.Events || n < 10 {
				t.Errorf("allocation failures: memtrace %d, tracefs %d", n, alloc.Events)
			}
			frags, err := s.ExtfragAggregates()
			if err != nil {
				t.Fatal(err)
			}
			n = 0
			for _, x := range frags {
				if int(x.Pid) == frag.Pid {
					n += x.Count
				}
			}
			if n != frag.Events || n == 0 {
				t.Errorf("extfrag: memtrace %d, tracefs %d", n, frag.Events)
			}
			if len(hugeEvents) != 2 || hugeEvents[0].Hugetlb.OK || !hugeEvents[1].Hugetlb.AfterHugeFailure {
				t.Errorf("huge-page events of the fallback: %+v", hugeEvents)
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			for sig, v := range st {
				if v.Lost != 0 || v.MapFull != 0 {
					t.Errorf("%s: %+v", sig, v)
				}
			}
		})
	}
}

// TestFexitFirst: auto tries fexit on the allocator first. Where the
// kernel refuses it (this host: EPERM), the refusal is recorded and tp_btf
// is used; --alloc-hook fexit then attaches nothing for that signal.
func TestFexitFirst(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	s, err := loader.Start(cfg, loader.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Hooks()[0]
	s.Close()
	if !h.Attached {
		t.Fatalf("nothing attached: %+v", h)
	}
	if strings.HasPrefix(h.Hook, "fexit/") {
		t.Logf("fexit permitted here: %s", h.Hook)
		return
	}
	if h.Hook != "tp_btf/mm_page_alloc" || len(h.Rejected) == 0 || !strings.HasPrefix(h.Rejected[0].Hook, "fexit/") || h.Rejected[0].Reason == "" {
		t.Fatalf("fexit refusal not recorded before tp_btf: %+v", h)
	}
	t.Logf("fexit refused (%s), using %s", h.Rejected[0].Reason, h.Hook)

	cfg.AllocHook = "fexit"
	if s, err := loader.Start(cfg, loader.Naming{}); err == nil {
		s.Close()
		t.Fatal("--alloc-hook fexit attached although fexit is refused here")
	}
}

// drain reads the session's events from now on, so that a busy machine
// (every process's events, another test binary's reclaim) cannot fill
// the channel and then the ring buffers while the test provokes, and
// the zero-loss checks hold; the returned func, called after Stop,
// returns them.
func drain(s *loader.Session) func() []event.Event {
	ch := make(chan []event.Event, 1)
	go func() {
		var all []event.Event
		for ev := range s.Events() {
			all = append(all, ev)
		}
		ch <- all
	}()
	return func() []event.Event { return <-ch }
}

// assertGone fails if any of the session's programs is still in the
// kernel after Close (other tools may have programs loaded: only ours are
// checked). Freed programs go asynchronously (RCU): allow a moment.
func assertGone(t *testing.T, ids []ebpf.ProgramID) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []ebpf.ProgramID
		for _, id := range ids {
			p, err := ebpf.NewProgramFromID(id)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err == nil {
				p.Close()
			}
			left = append(left, id)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("programs %v still loaded after Close", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWarnAllocCompanion: where kprobes exist, a real failure that the
// kernel logs arrives as a warn_alloc event with its size and flags;
// where they do not (this development host), the companion is reported
// as not attached, with the reason, and the main hook still works.
func TestWarnAllocCompanion(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	s, err := loader.Start(cfg, loader.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.Hooks()[0]
	privtest.RequireAttached(t, s.Hooks(), event.SignalAlloc)
	if len(h.Companions) != 1 || h.Companions[0].Hook != "kprobe/warn_alloc" {
		t.Fatalf("companions: %+v", h.Companions)
	}
	c := h.Companions[0]
	if !c.Attached {
		if c.Reason == "" {
			t.Fatal("companion not attached and no reason given")
		}
		t.Logf("kprobe/warn_alloc not attached here: %s", c.Reason)
		return
	}
	rep, err := provoke.WarnAllocFailure(provoke.WithComm("mt-warn"))
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("the kprobe is attached, but no warn_alloc failure can be provoked on this host: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	var found bool
	for ev := range s.Events() {
		if ev.Kind != event.KindWarnAlloc || int(ev.Pid) != rep.Pid {
			continue
		}
		w := ev.WarnAlloc
		if w.What == "vmalloc error" && w.Size != nil && *w.Size > 0 && w.Logged {
			found = true
		}
	}
	if !found {
		t.Errorf("no logged vmalloc warn_alloc event for pid %d (kernel log: %s)", rep.Pid, rep.Warning)
	}
}

// TestFexitCountsRealFailures: where the kernel permits fexit on the
// allocator, it counts real failures exactly as tracefs does.
func TestFexitCountsRealFailures(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	cfg.AllocHook = "fexit"
	s, err := loader.Start(cfg, loader.Naming{})
	if err != nil {
		t.Skipf("this kernel refuses fexit on the allocator (auto falls back, see TestFexitFirst): %v", err)
	}
	defer s.Close()
	rep, err := provoke.AllocFailures(10, provoke.WithComm("mt-fexit"))
	if err != nil {
		t.Fatal(err)
	}
	aggs, err := s.AllocAggregates()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, a := range aggs {
		if int(a.Pid) == rep.Pid {
			n += a.Count
		}
	}
	t.Logf("%s: memtrace %d, tracefs %d", s.Hooks()[0].Hook, n, rep.Events)
	if n != rep.Events || n < 10 {
		t.Errorf("fexit counted %d failures, tracefs %d", n, rep.Events)
	}
}

// noFindVMA says the signal hooks of hugefault were refused because the
// kernel has no bpf_find_vma helper (before 5.17): they cannot find the
// faulting mapping there, and only fexit is left; the classic tracepoint
// hook also needs x86's thread.cr2 for the address.
func noFindVMA(h event.HookStatus) bool {
	for _, r := range h.Rejected {
		if strings.Contains(r.Reason, "bpf_find_vma is not in kernel BTF") || strings.Contains(r.Reason, "thread.cr2") {
			return true
		}
	}
	return false
}
