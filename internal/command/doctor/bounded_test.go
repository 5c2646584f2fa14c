package doctor

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/testing/synthlog"
	"github.com/memtrace/memtrace/pkg/gfp"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

func writeLog(t *testing.T, r io.Reader) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kern.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnparsedOnlyLog: a log whose failure reports are all in a form
// that cannot be read says so, not "none logged".
func TestUnparsedOnlyLog(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "[%d.000001] swapper/0: page allocation failure: order:one, mode:0x20\n", 100+i)
	}
	_, r := run(t, "testdata/vm", writeLog(t, strings.NewReader(b.String())), Config{})
	f := find(t, r, "alloc-failures")
	if f.Severity != Warn || !strings.Contains(f.Summary, "100 lines name an allocation failure") || r.Log.Unparsed != 100 {
		t.Errorf("%v %q, unparsed %d", f.Severity, f.Summary, r.Log.Unparsed)
	}
}

// TestOtherGroupsReported: past kmsg.MaxGroups groups, the report keeps
// the most frequent and counts the others, in the text and the JSON.
func TestOtherGroupsReported(t *testing.T) {
	n := kmsg.MaxGroups + 50
	_, r := run(t, "testdata/vm", writeLog(t, synthlog.New(synthlog.Options{Reports: n, Distinct: true})), Config{})
	f := find(t, r, "alloc-failures")
	want := fmt.Sprintf("%d failures in %d groups", n, n)
	if len(r.Failures) != kmsg.MaxGroups || r.Log.Other.Reports != 50 || r.Log.Total != n || !strings.HasPrefix(f.Summary, want) {
		t.Errorf("%d groups, other %+v, total %d, summary %q", len(r.Failures), r.Log.Other, r.Log.Total, f.Summary)
	}
	if !strings.Contains(fmt.Sprint(f.Evidence), "50 failures in 50 other groups") {
		t.Errorf("evidence %+v", f.Evidence)
	}
	// One note for the 256 groups the same interrupt explains, not 256.
	merged := 0
	for _, n := range f.Notes {
		if strings.Contains(n, "and 253 more: the task only happened to be running when the interrupt came") {
			merged++
		}
	}
	if merged != 1 || len(f.Notes) > maxGroupRows+1 {
		t.Errorf("notes %q", f.Notes)
	}
}

// endless never ends, and never holds a failure.
type endless struct{}

func (endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = '\n'
	}
	return len(b), nil
}

// TestTruncatedLog: a pipe read up to its bound is "none in the first N
// read", not "none logged".
func TestTruncatedLog(t *testing.T) {
	_, r := run(t, "testdata/vm", "-", Config{}, func(o *Options) {
		o.LogFile, o.Stdin, o.LogMaxBytes = "-", endless{}, 1<<20
	})
	f := find(t, r, "alloc-failures")
	if f.Severity != Warn || f.Summary != "none in the first 1 MiB read" || !r.Log.Truncated || r.Log.MaxBytes != 1<<20 {
		t.Errorf("%v %q, log %+v", f.Severity, f.Summary, r.Log)
	}
}

// cancelOnDone cancels itself the after-th time something waits on it:
// an interruption that comes while the interval is being sampled (with
// no log to read, sampling is what waits on the context).
type cancelOnDone struct {
	context.Context
	cancel func()
	calls  atomic.Int32
	after  int32
}

func (c *cancelOnDone) Done() <-chan struct{} {
	if c.calls.Add(1) == c.after {
		c.cancel()
	}
	return c.Context.Done()
}

// TestIntervalInterrupted: `--interval 1h` stopped early reports rates
// over the time measured, and says it was interrupted.
func TestIntervalInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := Gather(&cancelOnDone{Context: ctx, cancel: cancel, after: 3}, Options{
		ProcRoot: "testdata/db/proc", SysRoot: "testdata/db/sys", NoLog: true,
		Interval: time.Hour, SampleEvery: 50 * time.Millisecond,
	})
	if !in.Interrupted || in.Later == nil || in.Interval <= 0 || in.Interval >= time.Hour || in.IntervalAsked != time.Hour {
		t.Fatalf("interrupted %v, later %v, interval %v of %v", in.Interrupted, in.Later != nil, in.Interval, in.IntervalAsked)
	}
	cfg := Config{HostGFP: func(string) (*gfp.Table, error) { return gfp.ForRelease("6.18") }}
	r := Check(in, cfg)
	want := duration(in.Interval) + " (interrupted; --interval was 1h0m)"
	if h := find(t, r, "pressure").Tables[0].Header; h[len(h)-1] != want {
		t.Errorf("header %q, want %q", h[len(h)-1], want)
	}
	if r.Interval == nil || !r.Interval.Interrupted || r.Interval.Measured != in.Interval {
		t.Errorf("report interval %+v", r.Interval)
	}

	// The rates divide by the time measured: 10 stalls in 2 s.
	later := *in.Later
	later.Vmstat = maps.Clone(in.Snap.Vmstat)
	later.Vmstat["allocstall_normal"] += 10
	later.Time = in.Snap.Time.Add(2 * time.Second)
	in.Later, in.Interval = &later, 2*time.Second
	pr := find(t, Check(in, cfg), "pressure")
	for _, row := range pr.Tables[0].Rows {
		if strings.HasPrefix(row[0], "allocstall ") && row[len(row)-1] != "5/s" {
			t.Errorf("row %q, want 5/s", row)
		}
	}
	if !strings.Contains(pr.Summary, "10 times in 2s (interrupted; --interval was 1h0m)") {
		t.Errorf("summary %q", pr.Summary)
	}

	// Interrupted before the interval began: no rates, and a note.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	in = Gather(ctx2, Options{ProcRoot: "testdata/db/proc", SysRoot: "testdata/db/sys", NoLog: true, Interval: time.Hour})
	pr = find(t, Check(in, cfg), "pressure")
	if in.Later != nil || !strings.Contains(strings.Join(pr.Notes, " "), "interrupted before the --interval 1h0m began") {
		t.Errorf("later %v, notes %q", in.Later != nil, pr.Notes)
	}
}
