package record

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestRecordRealBurst starts the recorder on real probes, provokes a real
// burst of allocation failures, and finds one incident file with the
// failures, the state before the trigger and after it; a second burst
// within the cooldown opens no other.
func TestRecordRealBurst(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	const comm = "mt-recburst"
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.Dir, opts.Before, opts.After = dir, 30*time.Second, 2*time.Second
	opts.SampleEvery, opts.FastEvery = 100*time.Millisecond, 50*time.Millisecond
	// A burst is over once the window passed; the second one below comes
	// after the first incident's 2 s of recording.
	opts.Triggers = Triggers{Burst: Rate{N: 10, Per: 2 * time.Second}}
	opts.Cooldown = time.Hour
	logs := &logLines{}
	opts.Logf = logs.logf
	cfg := loader.DefaultConfig()
	cfg.Signals = Signals()
	cfg.Comm = comm // other tests' failures run beside this one
	start := func(n event.Naming) (event.Source, error) {
		s, err := loader.Start(cfg, n)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan []event.HookStatus, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts, start, func(s event.Source) { ready <- s.Hooks() }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("recorder: %v", err)
		}
	}()
	select {
	case hooks := <-ready:
		privtest.RequireAttached(t, hooks, event.SignalAlloc)
	case err := <-done:
		t.Fatalf("recorder did not start: %v", err)
	}
	// A state sample before the trigger: the recorder takes one as it
	// starts, then every 100ms.
	time.Sleep(300 * time.Millisecond)

	rep, err := provoke.AllocFailures(20, provoke.WithComm(comm))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the complete incident", func() bool { return logs.has("wrote complete") })
	if !logs.has("wrote first part") {
		t.Error("no first part was written before the complete file")
	}
	files := incidentFiles(t, dir)
	if len(files) != 1 || !strings.Contains(files[0], KindFailureBurst) {
		t.Fatalf("files %v, want one failure_burst incident", files)
	}
	doc, inc := readDoc(t, filepath.Join(dir, files[0]))
	if doc.StopReason != "duration" || !inc.Complete {
		t.Errorf("stop_reason %q, complete %v; want duration, complete", doc.StopReason, inc.Complete)
	}
	var events int
	for _, ev := range doc.Events {
		if ev.Kind == event.KindAllocFailure && int(ev.Pid) == rep.Pid {
			events++
			if len(ev.AllocFailure.Stack) == 0 {
				t.Errorf("event without a kernel stack: %+v", ev.AllocFailure)
			}
		}
	}
	var count uint64
	for _, a := range doc.AllocFailures {
		if int(a.Pid) == rep.Pid {
			count += a.Count
		}
	}
	t.Logf("pid %d: %s ×%d, %d failed; tracefs %d, incident: %d events, count %d, %d states, trigger %q",
		rep.Pid, rep.Syscall, rep.Attempts, rep.Failed, rep.Events, events, count, len(inc.States), inc.Trigger.Reason)
	if events < 10 || count != rep.Events {
		t.Errorf("incident holds %d events and counts %d failures of pid %d; tracefs saw %d", events, count, rep.Pid, rep.Events)
	}
	var before, after int
	for _, s := range inc.States {
		if s.Time.Before(inc.Trigger.Time) {
			before++
		} else {
			after++
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("%d states before the trigger at %s and %d after, want both", before, inc.Trigger.Time, after)
	}
	if doc.Before.Time.After(inc.Trigger.Time) || len(doc.Before.Buddy) == 0 {
		t.Errorf("before snapshot at %s (%d zones), want one before the trigger at %s", doc.Before.Time, len(doc.Before.Buddy), inc.Trigger.Time)
	}

	// The same burst again, within the cooldown: held back.
	if _, err := provoke.AllocFailures(20, provoke.WithComm(comm)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second burst held back", func() bool { return logs.has("failure_burst trigger held back (cooldown") })
	if files := incidentFiles(t, dir); len(files) != 1 {
		t.Errorf("files %v after a second burst within the cooldown, want one", files)
	}
}
