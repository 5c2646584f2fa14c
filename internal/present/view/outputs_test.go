package view_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/command/serve"
	"github.com/memtrace/memtrace/internal/command/watch"
	"github.com/memtrace/memtrace/internal/decode/migratetype"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/view"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// A family that exists only in this test, in two forms: one counted from
// its in-kernel aggregates (stalls), one from its events (sleeps).
const (
	stallSignal event.Signal = "fakestall"
	timedSignal event.Signal = "fakecompact"
	sleepSignal event.Signal = "fakesleep"
	sleepKind   event.Kind   = "fake_sleep"
	sentinel    event.Kind   = "fake_sentinel"
)

type stallRow struct {
	event.Task
	Kind  string `json:"kind"`
	Count uint64 `json:"count"`
}

// registerFakes registers the two views, as a new family's file in
// internal/present/view would, and nothing else: no output is told.
func registerFakes(t *testing.T) {
	t.Cleanup(view.Register(view.Family{
		Signal: stallSignal, Section: "fake_stalls",
		Rows: view.RowsOf(func(r stallRow) view.Count {
			return view.Count{Task: r.Task, Key: r.Kind, Labels: []string{r.Kind}, N: r.Count}
		}),
		Table: "Fake stalls by process", Metric: "fake_stalls", Help: "Fake stalls, by kind.",
		Dimensions: []view.Dimension{{Label: "kind", Header: "KIND"}},
	}))
	t.Cleanup(view.Register(view.Family{
		Signal: sleepSignal,
		Event: func(ev *event.Event) (view.Count, bool) {
			if ev.Kind != sleepKind {
				return view.Count{}, false
			}
			return view.Count{Task: ev.Task, Labels: []string{ev.Context.String()}, N: 1}, true
		},
		Table: "Fake sleeps by process", Metric: "fake_sleeps", Help: "Fake sleeps, by context.",
		Dimensions: []view.Dimension{{Label: "context", Header: "CONTEXT"}},
	}))
	t.Cleanup(view.Register(view.Family{
		Signal: timedSignal, Section: "fake_compact",
		Rows: view.RowsOf(func(r timedRow) view.Count {
			return view.Count{Task: r.Task, Key: r.Kind, Labels: []string{r.Kind, ""}, N: r.Count, Parts: r.Outcomes,
				Time: view.DurationsOf(r.StallTotals)}
		}),
		Table: "Fake compaction by process", Metric: "fake_compact", Help: "Fake compaction calls.",
		Timing:     &view.Timing{Metric: "fake_compact", Help: "Fake compaction time."},
		Dimensions: []view.Dimension{{Label: "kind", Header: "KIND"}, {Label: "outcome", Header: "OUTCOME", AsRead: true}},
	}))
}

// timedRow is a row of a timed family with an AsRead dimension, like
// compaction's: java compacted 5 times, 3 calls in [1, 2) ms and 2 in
// [16, 32) ms; postgres only woke the daemon (counted, not timed).
type timedRow struct {
	event.Task
	Kind string `json:"kind"`
	event.StallTotals
	Outcomes map[string]uint64 `json:"outcomes,omitempty"`
}

var timed = []timedRow{
	{java, "compaction", event.StallTotals{Count: 5, TotalNs: 50e6, MaxNs: 20e6,
		Histogram: event.StallHistogram{10: 3, 14: 2}}, map[string]uint64{"success": 3, "deferred": 2}},
	{pg, "wakeup", event.StallTotals{Count: 2}, nil},
}

var (
	pg    = event.Task{Pid: 4242, Comm: "postgres"}
	java  = event.Task{Pid: 77, Comm: "java"}
	stall = []stallRow{{pg, "reclaim", 3}, {java, "compaction", 9}, {pg, "compaction", 4}}
)

// fakeSession is a started session with the fake families attached: its
// aggregates are stall, and it delivers three sleep events and a
// sentinel, which tells a reader that the events before it were handled.
type fakeSession struct {
	events  chan event.Event
	fed     chan struct{} // closed once the sentinel was received
	stopped chan struct{}
	stop    sync.Once
}

func newFakeSession() *fakeSession {
	s := &fakeSession{events: make(chan event.Event), fed: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		for i, task := range []event.Task{pg, pg, java} {
			s.events <- event.Event{Kind: sleepKind, MonoNs: uint64(i), Context: event.ContextProcess, Task: task}
		}
		s.events <- event.Event{Kind: sentinel}
		close(s.fed)
		<-s.stopped
		close(s.events)
	}()
	return s
}

func (s *fakeSession) Hooks() []event.HookStatus {
	return []event.HookStatus{{Signal: stallSignal, Hook: "tp_btf/fake", Attached: true}, {Signal: sleepSignal, Hook: "tp_btf/fake", Attached: true},
		{Signal: timedSignal, Hook: "tp_btf/fake", Attached: true}}
}
func (s *fakeSession) Decoding() event.Decoding         { return event.Decoding{} }
func (s *fakeSession) Events() <-chan event.Event       { return s.events }
func (s *fakeSession) DecodeErrors() uint64             { return 0 }
func (s *fakeSession) ForgetPids([]uint32) error        { return nil }
func (s *fakeSession) GFP() *gfp.Table                  { return nil }
func (s *fakeSession) Migratetypes() *migratetype.Names { return nil }
func (s *fakeSession) Close() error                     { return s.Stop() }

func (s *fakeSession) Stop() error {
	s.stop.Do(func() { close(s.stopped) })
	return nil
}

func (s *fakeSession) Aggregates(sig event.Signal) (any, error) {
	switch sig {
	case stallSignal:
		return append([]stallRow(nil), stall...), nil
	case timedSignal:
		return append([]timedRow(nil), timed...), nil
	}
	return nil, nil
}

func (s *fakeSession) Stats() (map[event.Signal]event.Stats, error) {
	return map[event.Signal]event.Stats{stallSignal: {Seen: 16}, sleepSignal: {Seen: 3}}, nil
}

// TestNewFamilyInEveryOutput registers the views of two families no
// output names, and finds them in the capture document, in watch's tables
// and its JSON summary, and at serve's /metrics.
func TestNewFamilyInEveryOutput(t *testing.T) {
	registerFakes(t)
	t.Run("capture", testCapture)
	t.Run("watch", testWatch)
	t.Run("watch --json", testWatchJSON)
	t.Run("serve", testServe)
}

func testCapture(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doc, err := capture.Run(ctx, capture.Options{
		Start:   func(event.Naming) (event.Source, error) { return newFakeSession(), nil },
		OnReady: func(event.Source) { cancel() },
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := capture.Write("-", &buf, doc); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Timed  []timedRow     `json:"fake_compact"`
		Stalls []stallRow     `json:"fake_stalls"`
		Events []event.Event  `json:"events"`
		Stats  map[string]any `json:"stats"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// Sorted as every section: largest count first.
	want := []stallRow{{java, "compaction", 9}, {pg, "compaction", 4}, {pg, "reclaim", 3}}
	if len(got.Stalls) != 3 || got.Stalls[0] != want[0] || got.Stalls[1] != want[1] || got.Stalls[2] != want[2] {
		t.Errorf("fake_stalls = %+v, want %+v", got.Stalls, want)
	}
	if len(got.Timed) != 2 || got.Timed[0].Pid != java.Pid || got.Timed[0].Histogram[14] != 2 || got.Timed[0].Outcomes["deferred"] != 2 {
		t.Errorf("fake_compact = %+v", got.Timed)
	}
	sleeps := 0
	for _, ev := range got.Events {
		if ev.Kind == sleepKind {
			sleeps++
		}
	}
	if sleeps != 3 || got.Stats[string(sleepSignal)] == nil {
		t.Errorf("%d sleep events, stats %v", sleeps, got.Stats)
	}
	back, err := capture.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var stalls []stallRow
	if err := json.Unmarshal(back.Sections["fake_stalls"], &stalls); err != nil || len(stalls) != 3 || stalls[0] != want[0] {
		t.Errorf("read back: fake_stalls %+v, %v", stalls, err)
	}
}

// runWatch runs watch on the fake session until it has drawn its first
// frame, and returns everything it wrote.
func runWatch(t *testing.T, asJSON bool) string {
	out, err := os.CreateTemp(t.TempDir(), "watch")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = watch.Run(ctx, watch.Options{
		Start:   func(event.Naming) (event.Source, error) { return newFakeSession(), nil },
		OnReady: func(event.Source) { cancel() },
		Out:     out, JSON: asJSON,
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testWatch(t *testing.T) {
	s := runWatch(t, false)
	i := strings.LastIndex(s, "memtrace watch summary")
	if i < 0 {
		t.Fatalf("no final summary:\n%s", s)
	}
	final := s[i:]
	for _, want := range []string{
		"Fake stalls by process  (total 16)",
		"PID   COMM      LAST  TOTAL  KIND",
		"compaction 4, reclaim 3",
		"Fake sleeps by process  (total 3)",
		"CONTEXT",
		"Fake compaction by process  (total 7)",
		"KIND        OUTCOME                TIME    MAX     P50      P99",
		"compaction  success 3, deferred 2  50.0ms  20.0ms  <2.05ms  <32.8ms",
		"wakeup                             -       -       -        -",
	} {
		if !strings.Contains(final, want) {
			t.Errorf("final summary lacks %q:\n%s", want, final)
		}
	}
}

func testWatchJSON(t *testing.T) {
	var last watch.Summary
	for _, line := range strings.Split(strings.TrimSpace(runWatch(t, true)), "\n") {
		if strings.Contains(line, `"kind":"summary"`) {
			last = watch.Summary{}
			if err := json.Unmarshal([]byte(line), &last); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !last.Final {
		t.Fatal("no final summary line")
	}
	stalls := last.Families[stallSignal]
	if len(stalls) != 2 || stalls[0].Pid != java.Pid || stalls[0].Total != 9 || stalls[1].Labels["kind"]["reclaim"] != 3 {
		t.Errorf("families.%s = %+v", stallSignal, stalls)
	}
	if sleeps := last.Families[sleepSignal]; len(sleeps) != 2 || sleeps[0].Pid != pg.Pid || sleeps[0].Total != 2 {
		t.Errorf("families.%s = %+v", sleepSignal, sleeps)
	}
	c := last.Families[timedSignal]
	if len(c) != 2 || c[0].Pid != java.Pid || c[0].Time == nil || c[1].Time == nil {
		t.Fatalf("families.%s = %+v", timedSignal, c)
	}
	if tm := *c[0].Time; tm.Timed != 5 || tm.TotalNs != 50e6 || tm.MaxNs != 20e6 || tm.P50Ns != 2048e3 || tm.P99Ns != 32768e3 ||
		c[0].Labels["outcome"]["success"] != 3 || c[0].Labels["kind"]["compaction"] != 5 {
		t.Errorf("families.%s[0] = %+v, time %+v", timedSignal, c[0], tm)
	}
	if c[1].Time.Timed != 0 || c[1].Total != 2 {
		t.Errorf("a row without time: %+v, time %+v", c[1], *c[1].Time)
	}
}

func testServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sess := newFakeSession()
	ready := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		opts := serve.Options{
			Listen:  "127.0.0.1:0",
			Start:   func(event.Naming) (serve.Session, error) { return sess, nil },
			OnReady: func(addr net.Addr, _ event.Source) { ready <- addr },
		}
		opts.Metrics.CommLabel = true
		errc <- serve.Run(ctx, opts)
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	<-sess.fed // the sleep events were counted
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("serve: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# HELP memtrace_fake_stalls_total Fake stalls, by kind.",
		`memtrace_fake_stalls_total{comm="java",kind="compaction"} 9`,
		`memtrace_fake_stalls_total{comm="postgres",kind="reclaim"} 3`,
		`memtrace_fake_sleeps_total{comm="postgres",context="process"} 2`,
		`memtrace_read_errors_total{source="fakestall"} 0`,
		`memtrace_series{metric="fake_stalls"} 3`,
		// The timed family: its counter has no outcome label (AsRead),
		// and its histogram is cumulative in seconds.
		`memtrace_fake_compact_total{comm="java",kind="compaction"} 5`,
		`memtrace_fake_compact_total{comm="postgres",kind="wakeup"} 2`,
		"# TYPE memtrace_fake_compact_seconds histogram",
		`memtrace_fake_compact_seconds_bucket{comm="java",kind="compaction",le="0.001024"} 0`,
		`memtrace_fake_compact_seconds_bucket{comm="java",kind="compaction",le="0.002048"} 3`,
		`memtrace_fake_compact_seconds_bucket{comm="java",kind="compaction",le="0.016384"} 3`,
		`memtrace_fake_compact_seconds_bucket{comm="java",kind="compaction",le="0.032768"} 5`,
		`memtrace_fake_compact_seconds_bucket{comm="java",kind="compaction",le="+Inf"} 5`,
		`memtrace_fake_compact_seconds_sum{comm="java",kind="compaction"} 0.05`,
		`memtrace_fake_compact_seconds_count{comm="java",kind="compaction"} 5`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), `memtrace_fake_compact_seconds_count{comm="postgres"`) {
		t.Error("a family's untimed rows (wakeups) have a histogram")
	}
}
