package loader_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/tracefs"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestStallStacksOverThreshold: with a stall threshold, every memcg
// reclaim stall of a reader over it arrives with the kernel stack where
// it began, symbolized: the charge that reclaimed
// (try_to_free_mem_cgroup_pages, called from the memory cgroup's charge
// path). Without a disk for the file (the guests), charges failing at the
// limit reclaim instead. Without a threshold (TestMemcgReclaimCounts) records carry no
// stack. The threshold here is 1 ns, so every stall is sent and the count
// of events is exact against tracefs unless the ring buffer overflowed
// (then the lost counter says by how much).
func TestStallStacksOverThreshold(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for i, c := range stallHookCases {
		t.Run(c.name, func(t *testing.T) {
			s := startStallStacks(t, c.disable, c.prefix, event.SignalReclaim)
			// The reader's stalls are drained as they come: the ring
			// buffer holds ~180 records with stacks.
			collected := drain(s)
			reader, begins, how, err := memcgReclaimStalls(t, "mt-rstack-"+strconv.Itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			type got struct{ events, withStack, memcgFrame int }
			var g got
			var mine []event.Event
			for _, ev := range collected() {
				// Its memcg reclaim only: other kinds may come from
				// another test binary's node reclaim window.
				if ev.Kind != event.KindReclaimStall || int(ev.Pid) != reader || ev.Reclaim.Kind != event.StallMemcgReclaim {
					continue
				}
				mine = append(mine, ev)
				g.events++
				if len(ev.Reclaim.StackAddrs) > 0 && len(ev.Reclaim.Stack) > 0 {
					g.withStack++
				}
				if slices.ContainsFunc(ev.Reclaim.Stack, func(f string) bool { return strings.HasPrefix(f, "try_to_free_mem_cgroup_pages") }) {
					g.memcgFrame++
				}
			}
			stats, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			lost := stats[event.SignalReclaim].Lost
			t.Logf("%s: %s: %d stalls (tracefs), %d events, %d with a stack, %d through try_to_free_mem_cgroup_pages, %d lost", c.name, how, begins, g.events, g.withStack, g.memcgFrame, lost)
			if len(mine) > 0 {
				t.Logf("first stack: %s", strings.Join(mine[0].Reclaim.Stack, " ← "))
			}
			if g.events == 0 || g.withStack != g.events || g.memcgFrame != g.events {
				t.Errorf("stalls over the threshold without their stack: %+v", g)
			}
			if uint64(g.events)+lost < begins {
				t.Errorf("%d events and %d lost for %d stalls", g.events, lost, begins)
			}
		})
	}
}

// memcgReclaimStalls makes a process with this comm stall in memcg
// reclaim: reading a file through a small memory cgroup, or, without a
// disk file system for the file (a guest's initramfs), charges that fail
// at the cgroup's limit. It returns the process, the stalls tracefs
// counted for it and what was done.
func memcgReclaimStalls(t *testing.T, comm string) (pid int, begins uint64, how string, err error) {
	rep, err := provoke.MemcgReclaim(provoke.WithComm(comm))
	if err == nil {
		return rep.Pid, rep.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"], rep.Syscall, nil
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		return 0, 0, "", err
	}
	t.Logf("reading a file is not possible here (%v): failing charges instead", err)
	dir, unmount, err := tracefs.Mount()
	if err != nil {
		return 0, 0, "", err
	}
	defer unmount()
	counter, err := tracefs.NewCounter(dir, "vmscan", "mm_vmscan_memcg_reclaim_begin", `comm == "`+comm+`"`)
	if err != nil {
		return 0, 0, "", err
	}
	defer counter.Close()
	fails, err := provoke.AllocFailures(3, provoke.WithComm(comm))
	if err != nil {
		return 0, 0, "", err
	}
	begins, err = counter.Count()
	return fails.Pid, begins, fails.Syscall, err
}

// TestCompactionStacksOverThreshold: with a stall threshold and stacks,
// every direct compaction of a process growing the huge page pool on
// fragmented free memory arrives with the kernel stack where it began:
// the allocator's slow path compacting (try_to_compact_pages, under
// __alloc_pages_direct_compact), symbolized. Counted against tracefs's
// try_to_compact_pages for the same process; a compaction still open
// when the session stops is sent by no end hook, so events may fall
// short of the count only by the ring buffer's losses and that one.
func TestCompactionStacksOverThreshold(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for i, c := range stallHookCases {
		t.Run(c.name, func(t *testing.T) {
			s := startStallStacks(t, c.disable, c.prefix, event.SignalCompaction)
			collected := drain(s)
			rep, err := provoke.Compaction(3, provoke.WithComm("mt-cstack-"+strconv.Itoa(i)))
			if errors.Is(err, errors.ErrUnsupported) {
				t.Skipf("cannot provoke direct compaction safely here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			all := collected()
			stats, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			lost := stats[event.SignalCompaction].Lost
			var events, withStack, compactFrame int
			for _, ev := range all {
				if ev.Kind != event.KindCompactionStall || int(ev.Pid) != rep.Pid {
					continue
				}
				events++
				if len(ev.Compaction.StackAddrs) > 0 && len(ev.Compaction.Stack) > 0 {
					withStack++
				}
				if slices.ContainsFunc(ev.Compaction.Stack, func(f string) bool {
					return strings.HasPrefix(f, "try_to_compact_pages") || strings.HasPrefix(f, "__alloc_pages_direct_compact")
				}) {
					compactFrame++
				}
				if events == 1 {
					t.Logf("first stack: %s", strings.Join(ev.Compaction.Stack, " ← "))
				}
			}
			try := rep.Counts["compaction:mm_compaction_try_to_compact_pages"]
			t.Logf("%s: %d direct compactions (tracefs), %d events, %d with a stack, %d through the allocator's compaction, %d lost", c.name, try, events, withStack, compactFrame, lost)
			if events == 0 || withStack != events || compactFrame != events {
				t.Errorf("compactions over the threshold without their stack: %d events, %d with a stack, %d through the compaction path", events, withStack, compactFrame)
			}
			if uint64(events) > try || uint64(events)+lost+1 < try {
				t.Errorf("%d events and %d lost for %d compactions", events, lost, try)
			}
		})
	}
}
