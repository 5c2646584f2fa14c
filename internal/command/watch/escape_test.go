package watch

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/present/text"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// hostileNames are process names and cgroup paths a process can give
// itself: a bidi override (U+202E), isolates, a C1 CSI (U+009B), an OSC
// title sequence, invalid UTF-8 and a literal backslash sequence.
var hostileNames = []string{"gnp\u202eexe.sh", "\u2067rtl\u2069", "csi\u009b2J", "\x1b]0;pwned\x07", "bad\xffname", `\x1b`}

func hostileTick() Tick {
	t := Tick{Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Stats: map[event.Signal]event.Stats{event.SignalAlloc: {Seen: 6}}}
	for i, name := range hostileNames {
		task := event.Task{Pid: uint32(100 + i), Comm: name, Cgroup: "/system.slice/" + name + ".service"}
		t.Alloc = append(t.Alloc, event.AllocAggregate{Task: task, Context: event.ContextProcess, Order: 2,
			GFPFlags: 0xcc0, GFP: "GFP_KERNEL", StackID: 1, Stack: []string{"__alloc_pages+0x1c"}, Count: uint64(1 + i)})
		t.Extfrag = append(t.Extfrag, event.ExtfragAggregate{Task: task, FallbackOrder: 3,
			AllocMigratetypeName: "Unmovable", FallbackMigratetypeName: "Movable", Count: uint64(1 + i)})
		t.Hugetlb = append(t.Hugetlb, event.Event{Kind: event.KindHugetlb, Time: t.Now, Task: task,
			Hugetlb: &event.Hugetlb{Call: event.CallMmap, HugeRequest: true, Result: -12, Errno: "ENOMEM", Size: 2 << 20, FlagNames: "MAP_HUGETLB"}})
	}
	t.System = sysstate.Snapshot{Memory: sysstate.Memory{HugepageSizeKB: 2048}}
	return t
}

// TestRenderEscapesHostileNames renders a frame full of hostile names as
// watch does on a terminal (colour, width) and piped, and compares it with
// a golden file: every name is escaped with text.Escape, bidirectional
// controls included, and nothing but watch's own colour reaches the output.
func TestRenderEscapesHostileNames(t *testing.T) {
	local := time.Local
	time.Local = time.UTC
	defer func() { time.Local = local }()
	m := NewModel(time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	m.Update(hostileTick())
	hooks := []event.HookStatus{{Signal: event.SignalAlloc, Hook: "tp_btf/mm_page_alloc", Attached: true}}
	for _, c := range []struct {
		name string
		view View
	}{
		{"piped", View{Title: "memtrace watch", Hooks: hooks, Stacks: 1}},
		{"terminal", View{Title: "memtrace watch", Hooks: hooks, Stacks: 1, Color: true, Width: 200, MaxRows: 10}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			Render(&b, m, c.view)
			out := b.String()
			if c.view.Width > 0 {
				out = fitScreen(out, c.view.Width, 0)
			}
			plain := stripANSI(out)
			for _, r := range plain {
				if r != '\n' && text.Unsafe(r) {
					t.Errorf("%s output holds %U", c.name, r)
				}
			}
			for _, name := range hostileNames {
				if !strings.Contains(plain, text.Escape(name)) {
					t.Errorf("%s output lacks the escaped name %q", c.name, text.Escape(name))
				}
			}
			path := filepath.Join("testdata", "hostile-"+c.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s (run with -update if intended):\n%s", path, out)
			}
		})
	}
}
