package stacks

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/memtrace/memtrace/internal/event"
)

var rows = []event.AllocAggregate{
	{Task: event.Task{Pid: 1, Comm: "app"}, Count: 40, Order: 2, Stack: []string{"__alloc_pages_noprof+0x1/0x9", "pipe_resize_ring+0x3/0x9", "do_syscall_64+0x4/0x9"}},
	{Task: event.Task{Pid: 2, Comm: "db"}, Count: 25, Order: 0, Stack: []string{"__alloc_pages_noprof+0x1/0x9", "tcp_sendmsg+0x5/0x9", "do_syscall_64+0x4/0x9"}},
	{Task: event.Task{Pid: 2, Comm: "db"}, Count: 5},
	{Task: event.Task{Pid: 3, Comm: "thp"}, Count: 300, Order: 9, THPFallback: true, Stack: []string{"__alloc_pages_noprof+0x1/0x9", "do_huge_pmd_anonymous_page+0x7/0x9"}},
}

func TestTree(t *testing.T) {
	root := Tree(rows, false)
	if root.Count != 70 {
		t.Errorf("root counts %d, want 70 (THP fallbacks left out)", root.Count)
	}
	// all → do_syscall_64 (65) → {pipe (40), tcp (25)} → alloc; and [no stack] (5).
	if n := root.Nodes(); n != 7 {
		t.Errorf("%d nodes, want 7", n)
	}
	if c := root.Children[0]; c.Frame != "do_syscall_64+0x4/0x9" || c.Count != 65 || c.Children[0].Count != 40 {
		t.Errorf("first child %+v", c)
	}
	if d := root.Depth(); d != 4 {
		t.Errorf("depth %d, want 4", d)
	}
	if all := Tree(rows, true); all.Count != 370 {
		t.Errorf("with THP fallbacks: %d, want 370", all.Count)
	}
}

// TestProfileOpensInPprof writes the profile and reads it back with the
// pprof library and with `go tool pprof -top`: the samples add up to the
// capture's counts.
func TestProfileOpensInPprof(t *testing.T) {
	var b bytes.Buffer
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := WriteProfile(&b, rows, start, start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
	}
	if total != 370 || len(p.Sample) != 4 {
		t.Errorf("%d samples adding up to %d, want 4 and 370", len(p.Sample), total)
	}
	if leaf := p.Sample[0].Location[0].Line[0].Function.Name; leaf != "__alloc_pages_noprof" {
		t.Errorf("innermost frame %q", leaf)
	}
	if err := p.CheckValid(); err != nil {
		t.Errorf("pprof's own check: %v", err)
	}
	// Every row's labels, numbers included, and the window read back (an
	// empty value, or a zero number, is no label in pprof).
	first := func(vs []string) string {
		if len(vs) == 0 {
			return ""
		}
		return vs[0]
	}
	firstNum := func(vs []int64) int64 {
		if len(vs) == 0 {
			return 0
		}
		return vs[0]
	}
	for i, s := range p.Sample {
		r := rows[i]
		if first(s.Label["comm"]) != r.Comm || first(s.Label["gfp"]) != r.GFP || first(s.Label["context"]) != r.Context.String() ||
			firstNum(s.NumLabel["pid"]) != int64(r.Pid) || firstNum(s.NumLabel["order"]) != int64(r.Order) ||
			(len(s.Label["thp_fallback"]) == 1) != r.THPFallback || len(s.Location) != max(len(r.Stack), 1) {
			t.Errorf("sample %d: %v %v %d frames, row %+v", i, s.Label, s.NumLabel, len(s.Location), r)
		}
	}
	if p.TimeNanos != start.UnixNano() || p.DurationNanos != int64(time.Minute) || p.Period != 1 || p.PeriodType.Type != "failures" ||
		p.DefaultSampleType != "failures" || len(p.Mapping) != 1 || p.Mapping[0].File != "[kernel.kallsyms]" || len(p.Comments) != 1 {
		t.Errorf("profile header: time %d duration %d period %d %v default %q mappings %v comments %q",
			p.TimeNanos, p.DurationNanos, p.Period, p.PeriodType, p.DefaultSampleType, p.Mapping, p.Comments)
	}

	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	path := filepath.Join(t.TempDir(), "failures.pb.gz")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goCmd, "tool", "pprof", "-top", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`of (\d+) total`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("go tool pprof -top printed no total:\n%s", out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n != 370 {
		t.Errorf("go tool pprof counts %d failures, the capture 370:\n%s", n, out)
	}
	if !bytes.Contains(out, []byte("pipe_resize_ring")) {
		t.Errorf("frames missing:\n%s", out)
	}
}

func TestFunction(t *testing.T) {
	for in, want := range map[string]string{"a+0x1/0x2": "a", "a": "a", "0xffffffff81000000": "0xffffffff81000000", "+0x1": "+0x1"} {
		if got := Function(in); got != want {
			t.Errorf("Function(%q) = %q, want %q", in, got, want)
		}
	}
}
