package loader_test

import (
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestHugeFaultSigbus maps three huge pages with MAP_NORESERVE while the
// pool holds one and touches them: the kernel provides the first page
// and sends SIGBUS for the other two. Through each hook this kernel
// offers, memtrace reports each SIGBUS exactly as tracefs counts
// signal:signal_generate with sig == 7 for the child, with the mapping
// (its start, size, page size and flags) and the cause: the pool was
// empty for a mapping without a reservation.
//
// The contended cases touch ten pages (nine SIGBUS) while two other
// threads of the child map and unmap memory, holding the mmap lock for
// writing: bpf_find_vma only tries that lock, and the preferred hook then
// reads the mapping without it. The lockless hook (before 6.1, where
// bpf_find_vma is missing) reads the task's VMA cache; on later kernels
// that case is skipped.
func TestHugeFaultSigbus(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for _, c := range []struct {
		name    string
		disable []string
		hook    string
		contend bool
	}{
		{"preferred", nil, "", false},
		{"preferred, mmap lock contended", nil, "", true},
		{"lockless, mmap lock contended", []string{"fexit", "tp_btf/signal_generate", "tracepoint"}, "tp_btf/signal_generate", true},
		{"tracepoint", []string{"fexit", "tp_btf"}, "tracepoint/signal/signal_generate", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := loader.DefaultConfig()
			cfg.Signals = []event.Signal{event.SignalHugefault}
			cfg.DisableHooks = c.disable
			s, err := loader.Start(cfg, loader.Naming{})
			if err != nil && strings.Contains(err.Error(), "vmacache is not in kernel BTF") && strings.HasPrefix(c.name, "lockless") {
				t.Skipf("no VMA cache on this kernel (6.1+, where bpf_find_vma is): %v", err)
			}
			if err != nil && (strings.Contains(err.Error(), "bpf_find_vma is not in kernel BTF") || strings.Contains(err.Error(), "thread.cr2")) {
				t.Skipf("the signal hooks need bpf_find_vma (5.17+) to find the mapping, the classic one x86's thread.cr2 for the address: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			ids, err := s.ProgramIDs()
			if err != nil {
				t.Fatal(err)
			}
			defer assertGone(t, ids)
			defer s.Close()
			h := s.Hooks()[0]
			if !h.Attached || (c.hook != "" && h.Hook != c.hook) {
				t.Fatalf("hook %+v, want %q attached", h, c.hook)
			}
			t.Logf("hook %s (rejected: %+v)", h.Hook, h.Rejected)

			restore, err := provoke.ReserveHugePages(0, 1)
			if err != nil {
				t.Fatal(err)
			}
			pages := 3
			if c.contend {
				pages = 10
			}
			rep, err := provoke.HugeFaults(provoke.HugeFaultRequest{Pages: pages, NoReserve: true, Contend: c.contend}, provoke.WithComm("mt-sigbus-"+c.name[:2]))
			if rerr := restore(); rerr != nil {
				t.Error(rerr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			var got []event.Event
			for ev := range s.Events() {
				if ev.Kind == event.KindHugeFault && int(ev.Pid) == rep.Pid {
					got = append(got, ev)
				}
			}
			t.Logf("child %d: %d SIGBUS by its own count, tracefs %d, memtrace %d", rep.Pid, len(rep.Faulted), rep.Events, len(got))
			if want := pages - 1; len(rep.Faulted) != want || rep.Events != uint64(want) || len(got) != want {
				t.Fatalf("SIGBUS: child saw %d, tracefs %d, memtrace %d; want %d each", len(rep.Faulted), rep.Events, len(got), want)
			}
			for i, ev := range got {
				f := ev.HugeFault
				m := f.Mapping
				if uint64(f.Address) != rep.Faulted[i] || uint64(m.Start) != rep.Start || m.Size != rep.Length ||
					m.PageSize != rep.PageSize || !m.Shared || !strings.Contains(m.FlagNames, "VM_NORESERVE") ||
					!strings.Contains(m.FlagNames, "VM_HUGETLB") || m.File != "anon_hugepage" {
					t.Errorf("event %d: %+v, mapping %+v; want address %#x in the mapping at %#x of %d bytes", i, f, m, rep.Faulted[i], rep.Start, rep.Length)
				}
				if f.Reservation != "noreserve" || f.Cause != "pool_empty" || f.Pool.Total != 1 || f.Pool.Free != 0 {
					t.Errorf("event %d: reservation %q, cause %q (%s), pool %+v", i, f.Reservation, f.Cause, f.Explanation, f.Pool)
				}
				if ev.Comm != rep.Comm || int(ev.Tid) != rep.Tid {
					t.Errorf("event %d by %s[%d], want %s[%d]", i, ev.Comm, ev.Tid, rep.Comm, rep.Tid)
				}
			}
			t.Logf("first: %s", got[0].HugeFault.Explanation)
		})
	}
}

// TestHugeFaultSigbusTwoSessions runs two memtrace sessions at once, as
// `memtrace serve` and a `memtrace verify` do on one host. Both programs
// run on the same SIGBUS with interrupts off, and bpf_find_vma defers its
// mmap unlock to a per-CPU irq_work that the first one has taken: the
// second got EBUSY and, before the mapping was read without the lock,
// lost every SIGBUS (the cause of verify's flaky SIGBUS test). Each
// session reports both SIGBUS of the child. fexit is disabled: where it
// is permitted (the 6.1 guest) the signal hook, and its lock-free read of
// 6.1's maple tree, are tested all the same.
func TestHugeFaultSigbusTwoSessions(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	var sessions []*loader.Session
	for range 2 {
		cfg := loader.DefaultConfig()
		cfg.Signals = []event.Signal{event.SignalHugefault}
		cfg.DisableHooks = []string{"fexit"}
		s, err := loader.Start(cfg, loader.Naming{})
		if err != nil && strings.Contains(err.Error(), "is not in kernel BTF") {
			t.Skipf("no signal hook on this kernel: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		ids, err := s.ProgramIDs()
		if err != nil {
			t.Fatal(err)
		}
		defer assertGone(t, ids)
		defer s.Close()
		t.Logf("session %d: hook %s", len(sessions), s.Hooks()[0].Hook)
		sessions = append(sessions, s)
	}
	restore, err := provoke.ReserveHugePages(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := provoke.HugeFaults(provoke.HugeFaultRequest{Pages: 3, NoReserve: true}, provoke.WithComm("mt-sigbus-two"))
	if rerr := restore(); rerr != nil {
		t.Error(rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sessions {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for ev := range s.Events() {
			if ev.Kind == event.KindHugeFault && int(ev.Pid) == rep.Pid && ev.HugeFault.Mapping.Size == rep.Length {
				n++
			}
		}
		t.Logf("session %d: %d SIGBUS of child %d (its own count %d, tracefs %d)", i, n, rep.Pid, len(rep.Faulted), rep.Events)
		if n != 2 || len(rep.Faulted) != 2 || rep.Events != 2 {
			t.Errorf("session %d saw %d SIGBUS; the child %d, tracefs %d; want 2 each", i, n, len(rep.Faulted), rep.Events)
		}
	}
}
