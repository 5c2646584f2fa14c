package record

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/event"
)

// logLines collects a recorder's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *logLines) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(s string) bool { return strings.Contains(s, sub) })
}

// count counts the lines holding sub.
func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// startRecorder runs a recorder of src in dir until the test ends.
func startRecorder(t *testing.T, src *fakeSource, opts Options) (*Recorder, *logLines) {
	rec, logs, _ := startStoppable(t, src, opts)
	return rec, logs
}

// startStoppable is startRecorder with a function that stops it.
func startStoppable(t *testing.T, src *fakeSource, opts Options) (*Recorder, *logLines, func()) {
	t.Helper()
	logs := &logLines{}
	opts.Logf = logs.logf
	rec, err := New(opts, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return rec, logs, stop
}

func testOptions(dir string) Options {
	o := DefaultOptions()
	o.Dir, o.After, o.Before = dir, 300*time.Millisecond, 10*time.Second
	o.SampleEvery, o.FastEvery = 50*time.Millisecond, 20*time.Millisecond
	o.Triggers = Triggers{Quiet: time.Hour}
	return o
}

// waitFor polls until ok, for at most a minute (a bound on a hung test,
// not a speed requirement).
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func incidentFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if isIncident(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func readDoc(t *testing.T, path string) (*capture.Document, *Incident) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := capture.Read(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inc, err := ReadIncident(doc)
	if err != nil || inc == nil {
		t.Fatalf("%s: incident section %v, %v", path, inc, err)
	}
	return doc, inc
}

// TestIncidentFirstPartThenComplete: a trigger writes the file with what
// came before at once (stop reason "recording"), then the same file
// complete with the events after it.
func TestIncidentFirstPartThenComplete(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	opts := testOptions(dir)
	opts.After = time.Hour // the complete file comes only when stopped
	rec, logs, stop := startStoppable(t, src, opts)
	rec.HandleEvent(event.Event{Kind: event.KindHugetlb, Time: time.Now(), Task: event.Task{Pid: 9, Comm: "before"},
		Hugetlb: &event.Hugetlb{Call: event.CallMmap, OK: true}})
	time.Sleep(time.Millisecond) // the trigger comes after the first event
	now := time.Now()
	src.mu.Lock()
	src.allocs = []event.AllocAggregate{
		{Task: event.Task{Pid: 1, Comm: "app"}, Count: 3, LastSeen: now},
		{Task: event.Task{Pid: 2, Comm: "old"}, Count: 5, LastSeen: now.Add(-time.Hour)},
	}
	src.mu.Unlock()
	rec.HandleEvent(failure(now, 1, 3, false))
	waitFor(t, "the first part", func() bool { return logs.has("wrote first part") })
	files := incidentFiles(t, dir)
	if len(files) != 1 || !strings.Contains(files[0], KindFirstFailure) {
		t.Fatalf("files %v, want one first_failure incident", files)
	}
	doc, inc := readDoc(t, filepath.Join(dir, files[0]))
	if doc.StopReason != StopRecording || inc.Complete {
		t.Errorf("first part: stop_reason %q complete %v", doc.StopReason, inc.Complete)
	}
	if len(doc.Events) != 2 || doc.Events[0].Comm != "before" {
		t.Errorf("first part events %+v, want the one before and the trigger", doc.Events)
	}
	if len(doc.AllocFailures) != 1 || doc.AllocFailures[0].Pid != 1 {
		t.Errorf("aggregates %+v, want only the row seen within the window", doc.AllocFailures)
	}
	if len(inc.States) == 0 || inc.Trigger.Kind != KindFirstFailure {
		t.Errorf("incident %+v: want states and the trigger", inc)
	}

	rec.HandleEvent(failure(time.Now(), 1, 4, false))
	// Stopping the recorder completes the file.
	stop()
	{
		doc, inc := readDoc(t, filepath.Join(dir, files[0]))
		if doc.StopReason != "signal" || !inc.Complete || len(doc.Events) != 3 {
			t.Errorf("after stop: stop_reason %q complete %v, %d events; want signal, complete, 3", doc.StopReason, inc.Complete, len(doc.Events))
		}
		if len(inc.Later) != 0 {
			t.Errorf("later triggers %+v: a failure within the quiet period is none", inc.Later)
		}
	}
}

// TestCooldownHolds: a second trigger of the same kind within the
// cooldown opens no incident; it is counted in the next one.
func TestCooldownHolds(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.Triggers = Triggers{Huge: true}
	opts.Cooldown = time.Hour
	src := newFakeSource()
	rec, logs := startRecorder(t, src, opts)
	fail := func(pid uint32) event.Event {
		return event.Event{Kind: event.KindHugetlb, Time: time.Now(), Task: event.Task{Pid: pid},
			Hugetlb: &event.Hugetlb{Call: event.CallShmget, HugeRequest: true, Errno: "ENOMEM"}}
	}
	rec.HandleEvent(fail(1))
	waitFor(t, "the complete incident", func() bool { return logs.has("wrote complete") })
	rec.HandleEvent(fail(2))
	waitFor(t, "the trigger held back", func() bool { return logs.has("held back (cooldown") })
	if files := incidentFiles(t, dir); len(files) != 1 {
		t.Errorf("files %v, want one incident: the second trigger came within the cooldown", files)
	}
	// Another kind is not held back, and says what was.
	rec.HandleEvent(event.Event{Kind: event.KindHugetlb, Time: time.Now(), Hugetlb: &event.Hugetlb{Call: event.CallMmap, AfterHugeFailure: true, OK: true}})
	waitFor(t, "the second incident", func() bool { return len(incidentFiles(t, dir)) == 2 })
	waitFor(t, "it complete", func() bool { return logs.count("wrote complete") == 2 })
	files := incidentFiles(t, dir)
	_, inc := readDoc(t, filepath.Join(dir, files[1]))
	if inc.Trigger.Kind != KindHugeFallback || inc.Held[KindHugeFailure] != 1 {
		t.Errorf("second incident: trigger %s, held back %v; want huge_page_fallback and one huge_page_failure held", inc.Trigger.Kind, inc.Held)
	}
}

// TestMaxSizeRemovesOldest: past --max-size the oldest incident files go,
// never the one just written; other files are left alone.
func TestMaxSizeRemovesOldest(t *testing.T) {
	dir := t.TempDir()
	old := []string{"incident-20200101T000000.000Z-first_failure.json", "incident-20200102T000000.000Z-first_failure.json"}
	for _, name := range old {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, 300<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, make([]byte, 1<<20), 0o644)
	// What a recorder killed mid-write leaves: removed at start.
	stale := filepath.Join(dir, ".incident-20200103T000000.000Z-first_failure.json.123.tmp")
	os.WriteFile(stale, []byte(`{"schema":`), 0o644)

	opts := testOptions(dir)
	opts.MaxSize = 450 << 10
	src := newFakeSource()
	rec, logs := startRecorder(t, src, opts)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	rec.HandleEvent(failure(time.Now(), 1, 1, false))
	waitFor(t, "the complete incident", func() bool { return logs.has("wrote complete") })
	files := incidentFiles(t, dir)
	if len(files) != 2 || files[0] != old[1] {
		t.Errorf("files %v, want the newer old one and the new one", files)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file that is not an incident was touched: %v", err)
	}
}

// TestRateLimit: past the rate limit no incident opens, whatever the kind.
func TestRateLimit(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.Triggers = Triggers{Huge: true}
	opts.Cooldown = 0
	opts.RateLimit = Rate{N: 1, Per: time.Hour}
	src := newFakeSource()
	rec, logs := startRecorder(t, src, opts)
	h := event.Event{Kind: event.KindHugetlb, Hugetlb: &event.Hugetlb{Call: event.CallShmget, HugeRequest: true}}
	h.Time = time.Now()
	rec.HandleEvent(h)
	waitFor(t, "the complete incident", func() bool { return logs.has("wrote complete") })
	h.Time = time.Now()
	rec.HandleEvent(h)
	waitFor(t, "the trigger held back", func() bool { return logs.has("rate limit of 1/1h") })
	if files := incidentFiles(t, dir); len(files) != 1 {
		t.Errorf("files %v, want one", files)
	}
}

// TestEventRingBounded: the ring keeps the newest events up to its
// capacity and counts those of the window it lost.
func TestEventRingBounded(t *testing.T) {
	r := newEvRing(3)
	for i := range 5 {
		r.push(event.Event{Time: t0.Add(time.Duration(i) * time.Second), Task: event.Task{Pid: uint32(i)}}, t0)
	}
	got := r.since(t0, 10)
	if len(got) != 3 || got[0].Pid != 2 || got[2].Pid != 4 {
		t.Errorf("ring holds %+v, want pids 2..4", got)
	}
	if n := r.droppedSince(t0); n != 2 {
		t.Errorf("dropped %d, want 2", n)
	}
	if n := r.droppedSince(t0.Add(time.Hour)); n != 0 {
		t.Errorf("dropped before a later window: %d, want 0", n)
	}
	if got := r.since(t0.Add(3*time.Second), 1); len(got) != 1 || got[0].Pid != 4 {
		t.Errorf("since with max 1: %+v", got)
	}
}

// TestFailureSamplesState: a failure that sets off no trigger still has
// the state sampled around it, before the next regular sample.
func TestFailureSamplesState(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.Triggers = Triggers{}
	opts.SampleEvery, opts.FastEvery = time.Hour, 10*time.Millisecond
	rec, _ := startRecorder(t, newFakeSource(), opts)
	states := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.states)
	}
	waitFor(t, "the first sample", func() bool { return states() == 1 })
	time.Sleep(20 * time.Millisecond) // past FastEvery since it
	rec.HandleEvent(failure(time.Now(), 1, 1, false))
	waitFor(t, "a sample at the failure", func() bool { return states() == 2 })
	// A THP fallback does not ask for one.
	time.Sleep(20 * time.Millisecond)
	rec.HandleEvent(failure(time.Now(), 1, 1, true))
	time.Sleep(50 * time.Millisecond)
	if n := states(); n != 2 {
		t.Errorf("%d samples after a THP fallback, want 2", n)
	}
}
