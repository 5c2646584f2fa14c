package watch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
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

// runWatch runs watch with its output in a pipe (not a terminal) until
// stop is called, and returns everything it printed.
func runWatch(t *testing.T, asJSON bool) (stop func() string) {
	t.Helper()
	return runWatchWith(t, asJSON, loader.DefaultConfig())
}

// runWatchWith is runWatch with the probes of cfg, and its stall
// threshold listed.
func runWatchWith(t *testing.T, asJSON bool, cfg loader.Config) (stop func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&buf, r); close(copied) }()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Interval: 200 * time.Millisecond, Start: probes(cfg), JSON: asJSON, Out: w, Stacks: 2, StallThreshold: cfg.StallThreshold,
			OnReady: func(event.Source) { close(ready) },
		})
		w.Close()
	}()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("watch did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("watch did not attach within 30s")
	}
	return func() string {
		time.Sleep(500 * time.Millisecond) // at least two intervals after the events
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("watch: %v", err)
		}
		<-copied
		return buf.String()
	}
}

// TestWatchShowsProvokedEvents runs watch with non-terminal output,
// provokes a huge-page failure with fallback, an allocation failure and
// extfrag events, and checks the rows, with pid and comm, in the plain
// snapshots and the final summary; a process whose name holds an escape
// sequence must show up escaped.
func TestWatchShowsProvokedEvents(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	stop := runWatch(t, false)
	evil := "\x1b[2Jevil"
	restore, err := provoke.ReserveHugePages(2048, 0) // empty, held against other tests
	if err != nil {
		stop()
		t.Fatal(err)
	}
	huge, err1 := provoke.Huge(provoke.HugeRequest{Op: provoke.MmapFallback}, provoke.WithComm(evil))
	if err := restore(); err != nil {
		t.Error(err)
	}
	alloc, err2 := provoke.AllocFailures(5, provoke.WithComm("mt-watch-alloc"))
	frag, err3 := provoke.ExtFrag(1, provoke.WithComm("mt-watch-frag"))
	out := stop()
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("output holds a raw escape character (no terminal, no colour, names escaped)")
	}
	if !strings.Contains(out, `\x1b[2Jevil`) {
		t.Errorf("escaped process name not shown")
	}
	if !strings.Contains(out, "=====") {
		t.Error("no plain snapshot separators in non-terminal output")
	}
	summary := out[strings.LastIndex(out, "memtrace watch summary"):]
	wantRow := func(section string, pid int, words ...string) {
		t.Helper()
		start := strings.Index(summary, section)
		if start < 0 {
			t.Fatalf("summary has no section %q:\n%s", section, summary)
		}
		rest := summary[start:]
		if end := strings.Index(rest[1:], "\n\n"); end > 0 {
			rest = rest[:end+1]
		}
		// Any row of the pid (first or second column) with every word.
	rows:
		for _, line := range strings.Split(rest, "\n") {
			fields := strings.Fields(line)
			if !(len(fields) > 0 && fields[0] == strconv.Itoa(pid) || (len(fields) > 1 && fields[1] == strconv.Itoa(pid))) {
				continue
			}
			for _, w := range words {
				if !strings.Contains(line, w) {
					continue rows
				}
			}
			return
		}
		t.Errorf("%s: no row for pid %d with %q in:\n%s", section, pid, words, rest)
	}
	wantRow("Allocation failures", alloc.Pid, "mt-watch-alloc", "process", strconv.FormatUint(alloc.Events, 10))
	wantRow("Fragmentation", frag.Pid, "mt-watch-frag")
	wantRow("Huge-page requests", huge.Pid, `\x1b[2Jevil`, "ENOMEM", "FAILED")
	wantRow("Huge-page requests", huge.Pid, "FALLBACK")
	if !strings.Contains(summary, "Most frequent failing kernel stacks") || !strings.Contains(summary, "mt-watch-alloc") {
		t.Error("stacks section missing the failing process")
	}
	for _, part := range []string{"System", "min_free_kbytes", "buddy", "Health", "hooks", "lost 0"} {
		if !strings.Contains(summary, part) {
			t.Errorf("summary lacks %q", part)
		}
	}
}

// TestWatchJSON checks that --json lines parse, that event lines are the
// capture schema's event objects, and that summaries count what happened.
func TestWatchJSON(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	stop := runWatch(t, true)
	alloc, err := provoke.AllocFailures(3, provoke.WithComm("mt-json-alloc"))
	out := stop()
	if err != nil {
		t.Fatal(err)
	}
	var events, summaries int
	var final *Summary
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		var kind struct{ Kind string }
		if err := json.Unmarshal(line, &kind); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, line)
		}
		switch kind.Kind {
		case "summary":
			summaries++
			var s Summary
			if err := json.Unmarshal(line, &s); err != nil {
				t.Fatal(err)
			}
			if s.Final {
				final = &s
			}
		case string(event.KindAllocFailure), string(event.KindExtfrag), string(event.KindHugetlb), string(event.KindWarnAlloc),
			string(event.KindReclaimStall), string(event.KindCompactionStall):
			var ev event.Event
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("event line does not match the capture event schema: %v: %s", err, line)
			}
			if ev.Kind == event.KindAllocFailure && int(ev.Pid) == alloc.Pid {
				events++
				if ev.Comm != "mt-json-alloc" || ev.AllocFailure == nil || ev.AllocFailure.GFP == "" {
					t.Errorf("event: %s", line)
				}
			}
		default:
			t.Fatalf("unknown line kind %q", kind.Kind)
		}
	}
	if events == 0 || summaries < 2 || final == nil {
		t.Fatalf("%d events of the provoked process, %d summaries, final %v", events, summaries, final != nil)
	}
	for _, a := range final.AllocFailures {
		if int(a.Pid) == alloc.Pid && a.Total != alloc.Events {
			t.Errorf("summary total %d, tracefs counted %d", a.Total, alloc.Events)
		}
	}
}
