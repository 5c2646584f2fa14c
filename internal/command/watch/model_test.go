package watch

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

func agg(pid uint32, comm string, ctx event.Context, order uint32, count uint64) event.AllocAggregate {
	return event.AllocAggregate{
		Task: event.Task{Pid: pid, Comm: comm}, Context: ctx, Order: order,
		GFPFlags: 0x820, GFP: "GFP_ATOMIC", Atomic: true, StackID: int32(pid), Count: count,
	}
}

func TestModelDeltasAndSorting(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewModel(t0)
	m.Update(Tick{Now: t0.Add(time.Second), Alloc: []event.AllocAggregate{
		agg(10, "postgres", event.ContextProcess, 0, 5),
		agg(0, "swapper/0", event.ContextSoftirq, 1, 50),
	}})
	rows := m.AllocRows()
	if len(rows) != 2 || rows[0].Pid != 0 || rows[0].Recent != 50 || rows[1].Recent != 5 {
		t.Fatalf("first tick: %+v %+v", rows[0], rows[1])
	}
	// Second tick: postgres fails 20 more, swapper none: postgres first.
	m.Update(Tick{Now: t0.Add(2 * time.Second), Alloc: []event.AllocAggregate{
		agg(10, "postgres", event.ContextProcess, 0, 25),
		agg(0, "swapper/0", event.ContextSoftirq, 1, 50),
	}})
	rows = m.AllocRows()
	if rows[0].Pid != 10 || rows[0].Recent != 20 || rows[0].Total != 25 || rows[1].Recent != 0 || rows[1].Total != 50 {
		t.Fatalf("second tick: %+v %+v", rows[0], rows[1])
	}
	if m.TotalFailures != 75 {
		t.Errorf("total %d, want 75", m.TotalFailures)
	}
	// A counter that went down was recreated in the kernel: its value is new.
	m.Update(Tick{Now: t0.Add(3 * time.Second), Alloc: []event.AllocAggregate{agg(10, "postgres", event.ContextProcess, 0, 3)}})
	if r := m.AllocRows()[0]; r.Recent != 3 || r.Total != 28 {
		t.Errorf("after reset: %+v", r)
	}
	if got := contexts(m.alloc[0].Contexts); got != "softirq" {
		t.Errorf("contexts %q", got)
	}
}

func TestModelAgesOutIdleProcesses(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewModel(t0)
	m.AgeOut = time.Minute
	m.Update(Tick{Now: t0, Alloc: []event.AllocAggregate{agg(10, "a", event.ContextProcess, 0, 1), agg(11, "b", event.ContextProcess, 0, 1)}})
	m.Update(Tick{Now: t0.Add(50 * time.Second), Alloc: []event.AllocAggregate{agg(10, "a", event.ContextProcess, 0, 1), agg(11, "b", event.ContextProcess, 0, 2)}})
	m.Update(Tick{Now: t0.Add(90 * time.Second), Alloc: []event.AllocAggregate{agg(10, "a", event.ContextProcess, 0, 1), agg(11, "b", event.ContextProcess, 0, 2)}})
	if len(m.Aged) != 1 || m.Aged[0] != 10 {
		t.Fatalf("aged %v, want [10]", m.Aged)
	}
	if len(m.AllocRows()) != 1 || m.TotalFailures != 3 {
		t.Errorf("rows %d, total %d", len(m.AllocRows()), m.TotalFailures)
	}
	if _, ok := m.pids.LastSeen(10); ok || m.allocCounts.Len() != 1 {
		t.Error("aged process's counters kept")
	}
}

func TestModelHugeRowsBoundedAndMarked(t *testing.T) {
	m := NewModel(time.Unix(0, 0))
	m.MaxHuge = 3
	var evs []event.Event
	for i := 0; i < 5; i++ {
		evs = append(evs, event.Event{Kind: event.KindHugetlb, Task: event.Task{Pid: uint32(i)},
			Hugetlb: &event.Hugetlb{Call: event.CallMmap, HugeRequest: true, Result: -12, Errno: "ENOMEM"}})
	}
	evs = append(evs, event.Event{Kind: event.KindHugetlb, Task: event.Task{Pid: 9},
		Hugetlb: &event.Hugetlb{Call: event.CallMmap, AfterHugeFailure: true, OK: true, Result: 0x7f00}})
	m.Update(Tick{Now: time.Unix(1, 0), Hugetlb: evs})
	rows := m.HugeRows()
	if len(rows) != 3 || rows[0].Pid != 9 || rows[0].Mark != "FALLBACK" || rows[1].Mark != "FAILED" || rows[0].Result != "0x7f00" {
		t.Fatalf("rows %+v", rows)
	}
	if m.TotalHuge != 5 || m.TotalHugeFailed != 5 || m.TotalFallbacks != 1 {
		t.Errorf("totals %d %d %d", m.TotalHuge, m.TotalHugeFailed, m.TotalFallbacks)
	}
}

func TestRenderEscapesAndMarks(t *testing.T) {
	m := NewModel(time.Unix(0, 0))
	m.Update(Tick{
		Now:   time.Unix(1, 0),
		Alloc: []event.AllocAggregate{agg(7, "\x1b]0;pwned\x07", event.ContextSoftirq, 1, 4)},
		Stats: map[event.Signal]event.Stats{event.SignalAlloc: {Seen: 4, Lost: 2}},
		System: sysstate.Snapshot{
			Memory:    sysstate.Memory{HugepageSizeKB: 2048},
			HugePools: []sysstate.HugePool{{PageSizeKB: 2048, Total: 13007, Free: 11813, Reserved: 3372}},
			Buddy:     []sysstate.ZoneFree{{Zone: "Normal", FreeBlocks: []uint64{812, 0, 0}, FreePages: 812}},
		},
	})
	var b bytes.Buffer
	Render(&b, m, View{Title: "t", Hooks: []event.HookStatus{{Signal: event.SignalAlloc, Hook: "tp_btf/mm_page_alloc", Attached: true}, {Signal: event.SignalHugetlb}},
		Context: "unavailable: no per-CPU section in kernel BTF"})
	out := b.String()
	for _, want := range []string{
		`\x1b]0;pwned\x07`, "ATOMIC 4", "softirq", "GFP_ATOMIC",
		"in use or promised 4566", "never used 8441", // the seed's pool, Free − Rsvd
		"NO FREE BLOCK OF ORDER ≥ 1", "lost 2", "hugetlb: NOT ATTACHED",
		"context  process/softirq/hardirq unavailable: no per-CPU section",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, 0x07) {
		t.Error("raw control characters in uncoloured output")
	}
}

func TestWhere(t *testing.T) {
	cases := []struct {
		task event.Task
		want string
	}{
		{event.Task{Cgroup: "/system.slice/postgresql.service"}, "/system.slice/postgresql.service"},
		{event.Task{Container: &event.Container{ID: "4b94289948ca50342f8329aed715b83a4b94289948ca50342f8329aed715b83a"}}, "ctr 4b94289948ca"},
		{event.Task{Container: &event.Container{ID: "4b94289948ca50342f8329aed715b83a4b94289948ca50342f8329aed715b83a", PodUID: "0f0e0d0c-1111-2222-3333-444455556666"}}, "ctr 4b94289948ca pod 0f0e0d0c"},
		{event.Task{Container: &event.Container{PodUID: "0f0e0d0c-1111-2222-3333-444455556666", QoS: "burstable"}}, "pod 0f0e0d0c burstable"},
	}
	for _, c := range cases {
		if got := where(c.task); got != c.want {
			t.Errorf("where(%+v) = %q, want %q", c.task, got, c.want)
		}
	}
}

// A process with many keys (stacks × flags) must cost linear time per
// tick: ranking per key was quadratic and stalled watch under bursts.
func BenchmarkUpdateManyKeys(b *testing.B) {
	aggs := make([]event.AllocAggregate, 10000)
	for i := range aggs {
		aggs[i] = agg(7, "db", event.ContextProcess, uint32(i%4), 1)
		aggs[i].StackID = int32(i)
		aggs[i].GFP = "GFP_" + string(rune('A'+i%8))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := NewModel(time.Unix(0, 0))
		m.Update(Tick{Now: time.Unix(1, 0), Alloc: aggs})
	}
}

func TestUpdateManyKeysRanksGFP(t *testing.T) {
	m := NewModel(time.Unix(0, 0))
	var aggs []event.AllocAggregate
	for i := 0; i < 100; i++ {
		a := agg(7, "db", event.ContextProcess, 0, uint64(1+i%3))
		a.StackID = int32(i)
		a.GFP = []string{"GFP_ATOMIC", "GFP_KERNEL", "GFP_NOWAIT"}[i%3]
		aggs = append(aggs, a)
	}
	m.Update(Tick{Now: time.Unix(1, 0), Alloc: aggs})
	r := m.AllocRows()[0]
	if len(r.GFP) != 3 || r.GFP[0] != "GFP_NOWAIT" || r.Total != 199 {
		t.Errorf("gfp %v total %d", r.GFP, r.Total)
	}
}

func frag(pid uint32, count, fragmenting uint64) event.ExtfragAggregate {
	return event.ExtfragAggregate{Task: event.Task{Pid: pid, Comm: "kcompactd0"}, FallbackOrder: 3,
		AllocMigratetype: 0, FallbackMigratetype: 1, Count: count, Fragmenting: fragmenting}
}

// TestModelFragmentingExact: the fragmenting column is the exact growth
// of its in-kernel counter, not the interval's share of it scaled by the
// key's all-time ratio (which gave 5 here).
func TestModelFragmentingExact(t *testing.T) {
	m := NewModel(time.Unix(0, 0))
	m.Update(Tick{Now: time.Unix(1, 0), Extfrag: []event.ExtfragAggregate{frag(4, 10, 1)}})
	m.Update(Tick{Now: time.Unix(2, 0), Extfrag: []event.ExtfragAggregate{frag(4, 20, 9)}})
	if r := m.FragRows()[0]; r.Total != 20 || r.Recent != 10 || r.Fragmenting != 9 {
		t.Errorf("row %+v, want total 20, recent 10, fragmenting 9", r)
	}
}

// TestModelFailedReadKeepsCounters: a tick whose read failed (nil) must
// not make the next read count every key's whole value again.
func TestModelFailedReadKeepsCounters(t *testing.T) {
	m := NewModel(time.Unix(0, 0))
	for i, n := range []uint64{5, 0, 7} {
		var al []event.AllocAggregate
		if n > 0 {
			al = []event.AllocAggregate{agg(10, "a", event.ContextProcess, 0, n)}
		}
		m.Update(Tick{Now: time.Unix(int64(i+1), 0), Alloc: al})
	}
	if m.TotalFailures != 7 {
		t.Errorf("total %d, want 7", m.TotalFailures)
	}
}

// TestModelAgesProcessIdleEverywhere: a process is idle when none of its
// aggregates grew; its in-kernel entries are deleted together (by pid),
// so a process still fragmenting keeps its allocation row too.
func TestModelAgesProcessIdleEverywhere(t *testing.T) {
	t0 := time.Unix(1000, 0)
	m := NewModel(t0)
	m.AgeOut = time.Minute
	al := []event.AllocAggregate{agg(10, "a", event.ContextProcess, 0, 1)}
	for i, n := range []uint64{1, 2, 3} {
		m.Update(Tick{Now: t0.Add(time.Duration(i) * 50 * time.Second), Alloc: al, Extfrag: []event.ExtfragAggregate{frag(10, n, 0)}})
	}
	if len(m.Aged) != 0 || len(m.AllocRows()) != 1 || len(m.FragRows()) != 1 {
		t.Fatalf("aged %v, rows %d %d", m.Aged, len(m.AllocRows()), len(m.FragRows()))
	}
	m.Update(Tick{Now: t0.Add(200 * time.Second), Alloc: al, Extfrag: []event.ExtfragAggregate{frag(10, 3, 0)}})
	if len(m.Aged) != 1 || len(m.AllocRows()) != 0 || len(m.FragRows()) != 0 {
		t.Errorf("aged %v, rows %d %d", m.Aged, len(m.AllocRows()), len(m.FragRows()))
	}
}
