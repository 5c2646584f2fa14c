package capture

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/burst"
	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/present/view"
)

var update = flag.Bool("update", false, "rewrite golden files")

const goldenPath = "../../../testdata/capture-v2.golden.json"

// sampleDocument has one of everything, with fixed values, so the golden
// file pins every field name and shape of schema version 2.
func sampleDocument() *Document {
	t0 := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	pc := int32(0x101)
	no := false
	key := int64(0x5eed)
	shmid := int64(32769)
	fd := int32(-1)
	addr := event.Hex(0x7f0000000000)
	task := event.Task{Pid: 4242, Tid: 4243, Comm: "postgres", CgroupID: 9001, MemcgID: 2675,
		Cgroup:    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f0e0d0c_1111_2222_3333_444455556666.slice/cri-containerd-4b94289948ca50342f8329aed715b83a4b94289948ca50342f8329aed715b83a.scope",
		Container: &event.Container{ID: "4b94289948ca50342f8329aed715b83a4b94289948ca50342f8329aed715b83a", Runtime: "containerd", PodUID: "0f0e0d0c-1111-2222-3333-444455556666", QoS: "burstable"}}
	af := event.AllocFailure{
		Order: 1, GFPFlags: 0x820, GFP: "GFP_ATOMIC", GFPClass: "atomic", Atomic: true,
		Migratetype: 0, MigratetypeName: "Unmovable", PreemptCount: &pc, StackID: 7,
		Stack: []string{"__alloc_frozen_pages_noprof+0x2f0", "kmem_cache_alloc_noprof+0x1a2", "sk_clone+0x21", "tcp_v4_rcv+0x9c1", "net_rx_action+0x1b2", "handle_softirqs+0xd7"},
		Count: 1,
		ZoneState: &event.ZoneState{ReadAt: t0.Add(time.Second + 85*time.Microsecond), ReadAfterNs: 85000, Verdict: event.VerdictFragmented,
			Summary: "fragmented: no free block of order ≥ 1 in Normal (largest order 0); Normal free 78 MiB, min 66 MiB (GFP_ATOMIC may go to 25 MiB)",
			Zones: []event.ZoneAtFailure{{Node: 0, Zone: "Normal", Free: 20000, Min: 16896, Low: 21120, High: 25344, Mark: 6336,
				Usable: 19999, PCPPages: 1200, BlocksAtLeast: 0, LargestOrder: 0, Fragmented: true}}},
	}
	hist := event.StallHistogram{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1}
	reclaim := []event.ReclaimAggregate{{Task: task, Context: event.ContextProcess, Kind: event.StallDirectReclaim, Order: 0, GFPFlags: 0xcc0, GFP: "GFP_KERNEL",
		StallTotals: event.StallTotals{Count: 3, TotalNs: 12_000_000, MaxNs: 9_000_000, Histogram: hist}, Reclaimed: 96,
		FirstSeen: t0.Add(2 * time.Second), LastSeen: t0.Add(6 * time.Second)}}
	compaction := []event.CompactionAggregate{{Task: task, Context: event.ContextProcess, Kind: event.StallCompaction, Order: 9, GFPFlags: 0x140cca, GFP: "GFP_HIGHUSER_MOVABLE|__GFP_COMP",
		PriorityValue: 1, Priority: "sync_light", StallTotals: event.StallTotals{Count: 3, TotalNs: 12_000_000, MaxNs: 9_000_000, Histogram: hist},
		Outcomes: []event.OutcomeCount{{Value: 2, Name: "deferred", Count: 2}, {Value: 8, Name: "success", Count: 1}}, PageObtained: 1,
		FirstSeen: t0.Add(2 * time.Second), LastSeen: t0.Add(6 * time.Second)}}
	sections := map[string]json.RawMessage{}
	for k, v := range map[string]any{"reclaim": reclaim, "compaction": compaction} {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		sections[k] = b
	}
	peak := func(pages uint64, at time.Duration) demand.Peak {
		return demand.Peak{Pages: pages, RawPages: pages, Window: 100 * time.Millisecond, At: t0.Add(at)}
	}
	return &Document{
		Schema: Schema, SchemaVersion: SchemaVersion,
		Tool:  Tool{Name: "memtrace", Version: "v0.1.0"},
		Host:  Host{Hostname: "db1", KernelRelease: "6.18.0", KernelVersion: "#1 SMP", Arch: "amd64", BootID: "0f0e0d0c-0000-4000-8000-000000000001", CPUs: 2},
		Start: t0, End: t0.Add(10 * time.Second), StopReason: "duration",
		Config: Config{Duration: "10s", Signals: []string{"alloc", "extfrag", "hugetlb"}, AllocHook: "auto", MaxEvents: 100000, SampleFirst: 64},
		Hooks: []event.HookStatus{
			{Signal: event.SignalAlloc, Hook: "tp_btf/mm_page_alloc", Attached: true},
			{Signal: event.SignalExtfrag, Hook: "tracepoint/kmem/mm_page_alloc_extfrag", Attached: true},
			{Signal: event.SignalHugetlb, Hook: "tp_btf/sys_enter+sys_exit", Attached: true, Note: "raw syscall hooks run on every system call",
				Rejected: []event.Attempt{{Hook: "tracepoint/syscalls/sys_{enter,exit}_{shmget,mmap,shmat}", Reason: "tracefs unavailable: mounting tracefs: operation not permitted"}}},
		},
		Decoding: Decoding{GFPSource: "tracefs format", MigratetypeSource: "kernel BTF", Symbols: "/proc/kallsyms", ContextSource: "per-CPU __preempt_count"},
		Before:   sampleSnapshot(t0),
		After:    sampleSnapshot(t0.Add(10 * time.Second)),
		Events: []event.Event{
			{Kind: event.KindAllocFailure, Time: t0.Add(time.Second), MonoNs: 1000, CPU: 1, Context: event.ContextSoftirq, Task: event.Task{Pid: 0, Tid: 0, Comm: "swapper/1"}, AllocFailure: &af},
			{Kind: event.KindExtfrag, Time: t0.Add(2 * time.Second), MonoNs: 2000, CPU: 0, Context: event.ContextProcess, Task: task,
				Extfrag: &event.Extfrag{PFN: 0x12345, AllocOrder: 0, FallbackOrder: 3, AllocMigratetype: 0, AllocMigratetypeName: "Unmovable", FallbackMigratetype: 1, FallbackMigratetypeName: "Movable", ChangeOwnership: &no, Fragmenting: true, Count: 1}},
			{Kind: event.KindHugetlb, Time: t0.Add(3 * time.Second), MonoNs: 3000, CPU: 0, Context: event.ContextProcess, Task: task,
				Hugetlb: &event.Hugetlb{Call: event.CallShmget, Size: 1 << 30, Flags: 0xfb0, FlagNames: "IPC_CREAT|IPC_EXCL|SHM_HUGETLB|0660", HugePageSize: 2 << 20, HugeRequest: true, Key: &key, Result: -12, Errno: "ENOMEM", DurationNs: 21000}},
			{Kind: event.KindHugetlb, Time: t0.Add(4 * time.Second), MonoNs: 4000, CPU: 0, Context: event.ContextProcess, Task: task,
				Hugetlb: &event.Hugetlb{Call: event.CallShmget, Size: 1 << 30, Flags: 0x7b0, FlagNames: "IPC_CREAT|IPC_EXCL|0660", AfterHugeFailure: true, Key: &key, ShmID: &shmid, Result: shmid, OK: true, DurationNs: 9000}},
			{Kind: event.KindHugetlb, Time: t0.Add(5 * time.Second), MonoNs: 5000, CPU: 1, Context: event.ContextProcess, Task: task,
				Hugetlb: &event.Hugetlb{Call: event.CallMmap, Size: 4 << 20, Flags: 0x40021, FlagNames: "MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB", HugePageSize: 2 << 20, HugeRequest: true, Prot: "PROT_READ|PROT_WRITE", Fd: &fd, Address: &addr, Result: int64(addr), OK: true, DurationNs: 15000}},
			{Kind: event.KindReclaimStall, Time: t0.Add(6 * time.Second), MonoNs: 6000, CPU: 0, Context: event.ContextProcess, Task: task,
				Reclaim: &event.ReclaimStall{Kind: event.StallDirectReclaim, GFPFlags: 0xcc0, GFP: "GFP_KERNEL", Node: -1, DurationNs: 9_000_000, Reclaimed: 32, Count: 3}},
			{Kind: event.KindCompactionStall, Time: t0.Add(6 * time.Second), MonoNs: 6500, CPU: 0, Context: event.ContextProcess, Task: task,
				Compaction: &event.CompactionStall{Order: 9, GFPFlags: 0x140cca, GFP: "GFP_HIGHUSER_MOVABLE|__GFP_COMP", PriorityValue: 1, Priority: "sync_light",
					OutcomeValue: 2, Outcome: "deferred", Start: t0.Add(6 * time.Second), StartNs: 6500, DurationNs: 2_000_000, Count: 3}},
		},
		EventsLeftOut: 0,
		AllocFailures: []event.AllocAggregate{{Task: event.Task{Comm: "swapper/1"}, Context: event.ContextSoftirq, Order: 1, GFPFlags: 0x820, GFP: "GFP_ATOMIC", GFPClass: "atomic", Atomic: true, MigratetypeName: "Unmovable", StackID: 7, Stack: af.Stack, Count: 1000, FirstSeen: t0.Add(time.Second), LastSeen: t0.Add(9 * time.Second)}},
		Extfrag:       []event.ExtfragAggregate{{Task: task, AllocOrder: 0, FallbackOrder: 3, AllocMigratetypeName: "Unmovable", FallbackMigratetype: 1, FallbackMigratetypeName: "Movable", Count: 12, Fragmenting: 12, ChangeOwnership: 0, FirstSeen: t0.Add(2 * time.Second), LastSeen: t0.Add(8 * time.Second)}},
		AtomicDemand: &AtomicDemand{
			Summary: demand.Summary{Interval: 100 * time.Millisecond, Readings: 100, Measured: 10 * time.Second,
				Total:       event.AtomicDemand{HighPages: 5000, OtherPages: 120000},
				PerInterval: demand.Peaks{High: peak(900, time.Second), Other: peak(3000, 4*time.Second), Total: peak(3200, 4*time.Second)},
				PerSecond:   demand.Peaks{High: peak(2000, time.Second), Other: peak(21000, 4*time.Second), Total: peak(22000, 4*time.Second)}},
			Sources: []event.AtomicSource{{Task: event.Task{Comm: "swapper/1"}, Context: event.ContextSoftirq, High: true, Samples: 5, SampledPages: 5, EstimatedPages: 5120}},
		},
		ZoneStates: []burst.Burst{{ReadAt: af.ZoneState.ReadAt, ReadAfterNs: 85000, First: t0.Add(time.Second), Comm: "swapper/1", Context: event.ContextSoftirq,
			Order: 1, GFP: "GFP_ATOMIC", GFPFlags: 0x820, Failures: 1, Verdict: af.ZoneState.Verdict, Summary: af.ZoneState.Summary, Zones: af.ZoneState.Zones}},
		Sections: sections,
		Processes: []Process{
			{Pid: 0, Comm: "swapper/1", AllocFailures: 1000, AllocOrders: []uint32{1}, AllocContexts: map[string]uint64{"softirq": 1000}, AtomicFailures: 1000},
			{Pid: 4242, Comm: "postgres", ExtfragEvents: 12, ExtfragFragmenting: 12, HugetlbRequests: 2, HugetlbFailures: 1, HugetlbFallbacks: 1, HugetlbBytes: 4 << 20},
		},
		Stats: map[event.Signal]event.Stats{
			event.SignalAlloc:   {Seen: 1000, Lost: 0, Sampled: 930, MapFull: 0},
			event.SignalExtfrag: {Seen: 12},
			event.SignalHugetlb: {Seen: 3},
		},
	}
}

func sampleSnapshot(t time.Time) sysstate.Snapshot {
	return sysstate.Snapshot{
		Time:           t,
		Memory:         sysstate.Memory{MemTotalKB: 24684084, MemFreeKB: 1048576, MemAvailableKB: 2097152, PageTablesKB: 204800, HugePagesTotal: 13007, HugePagesFree: 11813, HugePagesRsvd: 3372, HugepageSizeKB: 2048},
		HugePools:      []sysstate.HugePool{{PageSizeKB: 2048, Total: 13007, Free: 11813, Reserved: 3372}},
		Vmstat:         map[string]uint64{"allocstall_normal": 3, "compact_stall": 5, "compact_fail": 4, "compact_success": 1},
		Buddy:          []sysstate.ZoneFree{{Node: 0, Zone: "Normal", FreeBlocks: []uint64{812, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, FreePages: 812, MinPages: 16896, LowPages: 21120, HighPages: 25344, Managed: 6000000}},
		Sysctl:         sysstate.Sysctl{MinFreeKbytes: 67584, ZoneReclaimMode: 0, WatermarkScaleFactor: 10, NrHugepages: 13007, CompactionProactiveness: 20, CompactUnevictableAllowed: 1},
		PageblockOrder: 9, PageblockOrderSource: sysstate.PageblockFromPagetypeinfo,
	}
}

// TestSchemaGolden pins the JSON of schema version 2. A change here is a
// schema change: update docs/capture-schema.md, and bump SchemaVersion if
// a field was renamed, removed or changed meaning.
func TestSchemaGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := encode(&buf, sampleDocument()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(goldenPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("capture JSON differs from %s (run 'go test ./internal/command/capture -update' if the change is intended):\n%s", goldenPath, firstDiff(buf.String(), string(want)))
	}
	// The golden document must round-trip through Read.
	doc, err := Read(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Events) != 7 || doc.Events[0].AllocFailure == nil || doc.Events[0].Context != event.ContextSoftirq {
		t.Errorf("round trip lost events: %+v", doc.Events)
	}
}

// TestSchemaDocumented checks that every top-level field is described in
// docs/capture-schema.md, the sections of every family's view included.
func TestSchemaDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/capture-schema.md")
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	b, _ := json.Marshal(sampleDocument())
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	for _, f := range view.Families() {
		if f.Section != "" {
			top[f.Section] = nil
		}
	}
	for k := range top {
		if !bytes.Contains(doc, []byte("`"+k+"`")) {
			t.Errorf("field %q is not documented in docs/capture-schema.md", k)
		}
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  got:  %s\n  want: %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths differ: got %d lines, want %d", len(al), len(bl))
}
