package loader_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestStallStacksOverThreshold: with a stall threshold, every memcg
// reclaim stall of a reader over it arrives with the kernel stack where
// it began, symbolized: the charge that reclaimed
// (try_to_free_mem_cgroup_pages, called from the memory cgroup's charge
// path). Without a threshold (TestMemcgReclaimCounts) records carry no
// stack. The threshold here is 1 ns, so every stall is sent and the count
// of events is exact against tracefs unless the ring buffer overflowed
// (then the lost counter says by how much).
func TestStallStacksOverThreshold(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	for i, c := range stallHookCases {
		t.Run(c.name, func(t *testing.T) {
			cfg := loader.DefaultConfig()
			cfg.Signals = []event.Signal{event.SignalReclaim}
			cfg.DisableHooks = c.disable
			cfg.StallThreshold = time.Nanosecond
			s, err := loader.Start(cfg, loader.Naming{Stacks: true, Symbols: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, h := range s.Hooks() {
				if !h.Attached || !strings.HasPrefix(h.Hook, c.prefix[h.Signal]) {
					t.Fatalf("%s: hook %q attached=%v, want %q", h.Signal, h.Hook, h.Attached, c.prefix[h.Signal])
				}
			}
			// The reader's stalls are drained as they come: the ring
			// buffer holds ~180 records with stacks.
			type got struct{ events, withStack, memcgFrame int }
			done := make(chan got, 1)
			pid := make(chan int, 1)
			var mine []event.Event
			go func() {
				var all []event.Event
				for ev := range s.Events() {
					if ev.Kind == event.KindReclaimStall {
						all = append(all, ev)
					}
				}
				p := <-pid
				var g got
				for _, ev := range all {
					if int(ev.Pid) != p {
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
				done <- g
			}()
			rep, err := provoke.MemcgReclaim(provoke.WithComm("mt-rstack-" + strconv.Itoa(i)))
			if errors.Is(err, errors.ErrUnsupported) {
				s.Stop()
				pid <- -1
				<-done
				t.Skipf("cannot provoke memcg reclaim of page cache here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Stop(); err != nil {
				t.Fatal(err)
			}
			pid <- rep.Pid
			g := <-done
			stats, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			lost := stats[event.SignalReclaim].Lost
			begins := rep.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"]
			t.Logf("%s: %d stalls (tracefs), %d events, %d with a stack, %d through try_to_free_mem_cgroup_pages, %d lost", c.name, begins, g.events, g.withStack, g.memcgFrame, lost)
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
