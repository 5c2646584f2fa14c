package report

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/command/record"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// hostile is a process name written to run script if it were not
// escaped: an injected element would change the title, or show in the DOM.
const hostile = `<script>document.title="pwned"</script><img src=x id=pwned>`

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// incidentDoc is an incident with failures (some THP fallbacks) from two
// processes, a stall, a failed huge-page request, stacks sharing frames,
// and states before and after the trigger.
func incidentDoc() *capture.Document {
	doc := &capture.Document{
		Schema: capture.Schema, SchemaVersion: capture.SchemaVersion,
		Host:  capture.Host{Hostname: "db-1", KernelRelease: "6.18.0"},
		Start: t0, End: t0.Add(40 * time.Second), StopReason: "duration",
		Hooks: []event.HookStatus{{Signal: event.SignalAlloc, Hook: "tp_btf/mm_page_alloc", Attached: true}},
		Stats: map[event.Signal]event.Stats{event.SignalAlloc: {Seen: 40, Lost: 3}},
	}
	app := event.Task{Pid: 100, Comm: hostile}
	db := event.Task{Pid: 200, Comm: "postgres"}
	stackA := []string{"__alloc_pages_noprof+0x1", "alloc_pages_mpol+0x2", "pipe_resize_ring+0x3", "do_syscall_64+0x4"}
	stackB := []string{"__alloc_pages_noprof+0x1", "alloc_pages_mpol+0x2", "tcp_sendmsg+0x5", "do_syscall_64+0x4"}
	stackT := []string{"__alloc_pages_noprof+0x1", "vma_alloc_folio+0x9", "do_huge_pmd_anonymous_page+0x7"}
	for i := range 12 {
		task, stack, thp := app, stackA, false
		switch i % 3 {
		case 1:
			task, stack = db, stackB
		case 2:
			task, stack, thp = db, stackT, true
		}
		doc.Events = append(doc.Events, event.Event{Kind: event.KindAllocFailure, Time: t0.Add(time.Duration(10+i) * time.Second), Task: task,
			AllocFailure: &event.AllocFailure{Order: 2, GFP: "GFP_KERNEL", Count: uint64(i + 1), Stack: stack, THPFallback: thp}})
	}
	doc.Events = append(doc.Events,
		event.Event{Kind: event.KindReclaimStall, Time: t0.Add(15 * time.Second), Task: db, Reclaim: &event.ReclaimStall{Kind: event.StallDirectReclaim, DurationNs: uint64(2 * time.Second)}},
		event.Event{Kind: event.KindHugetlb, Time: t0.Add(16 * time.Second), Task: db, Hugetlb: &event.Hugetlb{Call: event.CallShmget, Size: 1 << 30, HugeRequest: true, Errno: "ENOMEM"}},
	)
	doc.AllocFailures = []event.AllocAggregate{
		{Task: app, Order: 2, Count: 40, Stack: stackA, LastSeen: t0},
		{Task: db, Order: 2, Count: 25, Stack: stackB, LastSeen: t0},
		{Task: db, Order: 0, Count: 5, LastSeen: t0}, // no stack
		{Task: db, Order: 9, Count: 300, Stack: stackT, THPFallback: true, LastSeen: t0},
	}
	doc.Extfrag = []event.ExtfragAggregate{}
	doc.Processes = capture.Summarize(doc.AllocFailures, doc.Extfrag, doc.Events[len(doc.Events)-1:])
	inc := record.Incident{ID: "x", Complete: true, WindowStart: t0, WindowEnd: doc.End,
		Trigger: record.Trigger{Kind: record.KindFailureBurst, Time: t0.Add(12 * time.Second), Reason: "burst by " + hostile, Pid: 100, Comm: hostile},
		Later:   []record.Trigger{}}
	for i := range 41 {
		free := uint64(20000 - 300*i)
		inc.States = append(inc.States, record.State{
			Snapshot: sysstate.Snapshot{Time: t0.Add(time.Duration(i) * time.Second),
				Memory: sysstate.Memory{MemTotalKB: 4 << 20, MemFreeKB: free * 4, MemAvailableKB: free * 8, HugePagesTotal: 8, HugePagesFree: uint64(8 - i/6)},
				Buddy: []sysstate.ZoneFree{{Node: 0, Zone: "Normal", FreeBlocks: []uint64{free, 900, 400 - uint64(9*i), 10, 3, 1, 0, 0, 0, 0, 0},
					MinPages: 1000, LowPages: 1250, HighPages: 1500}}},
			Pressure: &sysstate.Pressure{SomeAvg10: float64(i) / 2, FullAvg10: float64(i) / 5},
		})
	}
	doc.Before, doc.After = inc.States[0].Snapshot, inc.States[len(inc.States)-1].Snapshot
	raw, err := json.Marshal(inc)
	if err != nil {
		panic(err)
	}
	doc.Sections = map[string]json.RawMessage{record.Section: raw}
	return doc
}

// writeDoc writes doc as a file, as the recorder or capture would.
func writeDoc(t *testing.T, doc *capture.Document) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "incident.json")
	if err := capture.Write(path, nil, doc); err != nil {
		t.Fatal(err)
	}
	return path
}

// trieNodes counts the distinct stack prefixes (outermost first) of the
// rows, plus the root: the frames a flame graph of them has.
func trieNodes(rows []event.AllocAggregate) int {
	if len(rows) == 0 {
		return 0
	}
	seen := map[string]bool{}
	for _, a := range rows {
		key := ""
		frames := a.Stack
		if len(frames) == 0 {
			frames = []string{"[no stack]"}
		}
		for i := len(frames) - 1; i >= 0; i-- {
			key += "\x00" + frames[i]
			seen[key] = true
		}
	}
	return len(seen) + 1
}
