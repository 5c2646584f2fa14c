package metrics

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// fakeSource stands for a loader session: aggregates keyed like the
// kernel's maps, deleted by ForgetPids like the kernel's.
type fakeSource struct {
	alloc     map[allocKey]event.AllocAggregate
	frag      map[fragKey]event.ExtfragAggregate
	stats     map[event.Signal]event.Stats
	forgot    []uint32
	failing   bool
	forgetErr error
}

func newFakeSource() *fakeSource {
	return &fakeSource{alloc: map[allocKey]event.AllocAggregate{}, frag: map[fragKey]event.ExtfragAggregate{},
		stats: map[event.Signal]event.Stats{event.SignalAlloc: {}, event.SignalHugetlb: {}}}
}

// fail adds n failures to a process's key, as the kernel would.
func (f *fakeSource) fail(pid uint32, comm string, order uint32, gfp uint64, n uint64) {
	k := allocKey{pid: pid, order: order, gfp: event.Hex(gfp), stack: 7}
	a := f.alloc[k]
	a.Task = event.Task{Pid: pid, Comm: comm, MemcgID: uint64(pid)}
	a.Order, a.GFPFlags, a.StackID = order, event.Hex(gfp), 7
	a.Count += n
	f.alloc[k] = a
	st := f.stats[event.SignalAlloc]
	st.Seen += n
	f.stats[event.SignalAlloc] = st
}

func (f *fakeSource) Aggregates(sig event.Signal) (any, error) {
	switch sig {
	case event.SignalAlloc:
		if f.failing {
			return nil, fmt.Errorf("reading alloc_agg: boom")
		}
		return slices.Collect(maps.Values(f.alloc)), nil
	case event.SignalExtfrag:
		return slices.Collect(maps.Values(f.frag)), nil
	}
	return nil, nil
}

func (f *fakeSource) Stats() (map[event.Signal]event.Stats, error) { return f.stats, nil }

func (f *fakeSource) Hooks() []event.HookStatus {
	return []event.HookStatus{
		{Signal: event.SignalAlloc, Hook: "tp_btf/mm_page_alloc", Attached: true},
		{Signal: event.SignalHugetlb, Hook: "tp_btf/sys_enter+sys_exit", Attached: true,
			Rejected: []event.Attempt{{Hook: "tracepoint/syscalls/sys_{enter,exit}_{shmget,mmap,shmat}", Reason: "tracefs unavailable"}}},
	}
}

func (f *fakeSource) DecodeErrors() uint64 { return 0 }

func (f *fakeSource) ForgetPids(pids []uint32) error {
	if f.forgetErr != nil {
		return f.forgetErr
	}
	f.forgot = append(f.forgot, pids...)
	for _, p := range pids {
		for k := range f.alloc {
			if k.pid == p {
				delete(f.alloc, k)
			}
		}
		for k := range f.frag {
			if k.pid == p {
				delete(f.frag, k)
			}
		}
	}
	return nil
}

func classOf(flags uint64) string {
	if flags == 0x20 {
		return "atomic"
	}
	return "kernel"
}

func registry(t *testing.T, e *Exporter) prometheus.Gatherer {
	t.Helper()
	return gatherer(e)
}

// value returns the value of the one series of name whose labels include
// want, or -1 when there is none; several is a test failure.
func value(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	found := -1.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			if found >= 0 {
				t.Fatalf("%s%v: more than one series", name, want)
			}
			found = metricValue(m)
		}
	}
	return found
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func TestCountersFollowAggregates(t *testing.T) {
	src := newFakeSource()
	e := New(src, Options{CommLabel: true, ContainerLabels: true, MaxSeries: 100, GFPClass: classOf,
		Container: func(_, memcg uint64) event.Container {
			if memcg == 2 {
				return event.Container{ID: strings.Repeat("ab", 32), PodUID: "1c178021-5860-4495-a1ab-f9ac17877672", QoS: "burstable"}
			}
			return event.Container{}
		}})
	reg := registry(t, e)
	src.fail(1, "swapper/0", 1, 0x20, 3)
	src.fail(2, "mysqld", 2, 0xcc0, 5)
	atomic := map[string]string{"comm": "swapper/0", "order": "1", "gfp_class": "atomic", "context": "process", "container": ""}
	if v := value(t, reg, "memtrace_page_alloc_failures_total", atomic); v != 3 {
		t.Errorf("atomic failures = %v, want 3", v)
	}
	mysql := map[string]string{"comm": "mysqld", "gfp_class": "kernel", "container": strings.Repeat("ab", 32), "qos_class": "burstable"}
	if v := value(t, reg, "memtrace_page_alloc_failures_total", mysql); v != 5 {
		t.Errorf("mysqld failures = %v, want 5", v)
	}
	src.fail(2, "mysqld", 2, 0xcc0, 2)
	if v := value(t, reg, "memtrace_page_alloc_failures_total", mysql); v != 7 {
		t.Errorf("after 2 more: %v, want 7", v)
	}
	if v := value(t, reg, "memtrace_events_seen_total", map[string]string{"signal": "alloc"}); v != 10 {
		t.Errorf("seen = %v", v)
	}
	if v := value(t, reg, "memtrace_probe_attached", map[string]string{"signal": "hugetlb", "hook": "tracepoint/syscalls/sys_{enter,exit}_{shmget,mmap,shmat}"}); v != 0 {
		t.Errorf("rejected hook attached = %v, want 0", v)
	}
	if v := value(t, reg, "memtrace_probe_attached", map[string]string{"signal": "alloc", "hook": "tp_btf/mm_page_alloc"}); v != 1 {
		t.Errorf("attached hook = %v, want 1", v)
	}
}

// TestAgingKeepsCountersMonotonic: aggregates of idle processes are
// deleted from the kernel's maps; the counters must not drop, and counts
// of a process that comes back must add on.
func TestAgingKeepsCountersMonotonic(t *testing.T) {
	src := newFakeSource()
	now := time.Unix(1000, 0)
	e := New(src, Options{CommLabel: true, AgeOut: time.Minute, GFPClass: classOf, Now: func() time.Time { return now }})
	reg := registry(t, e)
	labels := map[string]string{"comm": "postgres"}
	src.fail(10, "postgres", 0, 0xcc0, 4)
	src.fail(11, "java", 0, 0xcc0, 1)
	if v := value(t, reg, "memtrace_page_alloc_failures_total", labels); v != 4 {
		t.Fatalf("= %v, want 4", v)
	}
	now = now.Add(30 * time.Second)
	src.fail(11, "java", 0, 0xcc0, 1) // java stays busy
	now = now.Add(45 * time.Second)
	value(t, reg, "memtrace_page_alloc_failures_total", labels)
	if len(src.forgot) != 1 || src.forgot[0] != 10 {
		t.Fatalf("forgot %v, want [10]", src.forgot)
	}
	if v := value(t, reg, "memtrace_page_alloc_failures_total", labels); v != 4 {
		t.Errorf("after aging = %v, want 4 (counters must not go back)", v)
	}
	src.fail(10, "postgres", 0, 0xcc0, 2) // same pid, key counted again from 0
	if v := value(t, reg, "memtrace_page_alloc_failures_total", labels); v != 6 {
		t.Errorf("after the process came back = %v, want 6", v)
	}
	if v := value(t, reg, "memtrace_aged_out_processes_total", nil); v != 1 {
		t.Errorf("aged out = %v", v)
	}
}

// TestCardinalityBound: more distinct process names than the limit fold
// into comm="other", and the folded names are counted.
func TestCardinalityBound(t *testing.T) {
	const limit, procs = 10, 25
	src := newFakeSource()
	e := New(src, Options{CommLabel: true, ContainerLabels: true, MaxSeries: limit, GFPClass: classOf})
	reg := registry(t, e)
	for i := range procs {
		src.fail(uint32(100+i), fmt.Sprintf("worker-%02d", i), 0, 0xcc0, uint64(i+1))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series int
	var total float64
	for _, mf := range mfs {
		if mf.GetName() == "memtrace_page_alloc_failures_total" {
			series = len(mf.GetMetric())
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	if series != limit+1 {
		t.Errorf("%d series, want the limit %d plus the folded one", series, limit)
	}
	if want := float64(procs * (procs + 1) / 2); total != want {
		t.Errorf("sum over series %v, want %v: folding must not lose counts", total, want)
	}
	other := value(t, reg, "memtrace_page_alloc_failures_total", map[string]string{"comm": Folded, "container": Folded})
	if other <= 0 {
		t.Errorf("no folded series with comm=%q", Folded)
	}
	if v := value(t, reg, "memtrace_folded_label_sets_total", map[string]string{"metric": "page_alloc_failures"}); v != procs-limit {
		t.Errorf("folded label sets = %v, want %d", v, procs-limit)
	}
	// More failures of an admitted name stay in its series; of a folded
	// one, in "other"; a folded name is counted once.
	for i := range procs {
		src.fail(uint32(100+i), fmt.Sprintf("worker-%02d", i), 0, 0xcc0, 1)
	}
	if v := value(t, reg, "memtrace_folded_label_sets_total", map[string]string{"metric": "page_alloc_failures"}); v != procs-limit {
		t.Errorf("folded label sets after repeats = %v, want %d", v, procs-limit)
	}
	if v := value(t, reg, "memtrace_series", map[string]string{"metric": "page_alloc_failures"}); v != limit+1 {
		t.Errorf("memtrace_series = %v", v)
	}
}

func TestLabelsSwitchedOff(t *testing.T) {
	src := newFakeSource()
	e := New(src, Options{GFPClass: classOf})
	reg := registry(t, e)
	for i := range 50 {
		src.fail(uint32(i+1), fmt.Sprintf("p%d", i), 1, 0x20, 1)
	}
	if v := value(t, reg, "memtrace_page_alloc_failures_total", nil); v != 50 {
		t.Errorf("without comm labels: one series of 50, got %v", v)
	}
	e.HandleEvent(&event.Event{Task: event.Task{Comm: "oracle"}, Hugetlb: &event.Hugetlb{Call: event.CallShmget, HugeRequest: true, Result: -12, Errno: "ENOMEM", HugePageSize: 2 << 20}})
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "comm" || l.GetName() == "container" {
					t.Errorf("%s has label %s with labels switched off", mf.GetName(), l.GetName())
				}
			}
		}
	}
}

func TestHugetlbEvents(t *testing.T) {
	src := newFakeSource()
	e := New(src, Options{CommLabel: true})
	reg := registry(t, e)
	task := event.Task{Pid: 5, Comm: "postgres\x1b[2J"}
	for _, h := range []event.Hugetlb{
		{Call: event.CallMmap, HugeRequest: true, Result: -12, Errno: "ENOMEM", HugePageSize: 2 << 20},
		{Call: event.CallMmap, AfterHugeFailure: true, OK: true, Result: 0x7f0000000000},
		{Call: event.CallShmget, HugeRequest: true, OK: true, Result: 3, HugePageSize: 1 << 30},
		{Call: event.CallShmat, OK: true}, // not a request
		{Call: event.CallMmap, OK: true},  // a large shared mapping, no failure before
		{Call: event.CallShmget, HugeRequest: true, Result: -1, Errno: "EPERM", HugePageSize: 2 << 20},
	} {
		e.HandleEvent(&event.Event{Kind: event.KindHugetlb, Task: task, Hugetlb: &h})
	}
	comm := `postgres\x1b[2J`
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"call": "mmap", "result": "ENOMEM", "page_size": "2097152", "comm": comm}, 1},
		{map[string]string{"call": "shmget", "result": "ok", "page_size": "1073741824"}, 1},
		{map[string]string{"call": "shmget", "result": "EPERM"}, 1},
	} {
		if v := value(t, reg, "memtrace_hugetlb_requests_total", c.labels); v != c.want {
			t.Errorf("requests%v = %v, want %v", c.labels, v, c.want)
		}
	}
	if v := value(t, reg, "memtrace_hugetlb_fallbacks_total", map[string]string{"comm": comm}); v != 1 {
		t.Errorf("fallbacks = %v, want 1", v)
	}
}

func TestExtfragSplitsFragmenting(t *testing.T) {
	src := newFakeSource()
	names := map[int32]string{0: "Unmovable", 1: "Movable"}
	e := New(src, Options{Migratetype: func(mt int32) string { return names[mt] }})
	reg := registry(t, e)
	k := fragKey{pid: 3, allocOrder: 0, fallbackOrd: 10, allocMT: 0, fallbackMT: 1}
	src.frag[k] = event.ExtfragAggregate{Task: event.Task{Pid: 3}, FallbackOrder: 10, AllocMigratetype: 0, FallbackMigratetype: 1, Count: 5, Fragmenting: 2}
	want := func(frag string, n float64) {
		t.Helper()
		l := map[string]string{"fragmenting": frag, "alloc_migratetype": "Unmovable", "fallback_migratetype": "Movable"}
		if v := value(t, reg, "memtrace_extfrag_events_total", l); v != n {
			t.Errorf("fragmenting=%s: %v, want %v", frag, v, n)
		}
	}
	want("true", 2)
	want("false", 3)
	x := src.frag[k]
	x.Count, x.Fragmenting = 9, 2
	src.frag[k] = x
	want("true", 2)
	want("false", 7)
}

// TestLint runs client_golang's linter for metric naming and help texts
// over everything serve exports, host gauges included.
func TestLint(t *testing.T) {
	src := newFakeSource()
	e := New(src, Options{CommLabel: true, ContainerLabels: true, MaxSeries: 5, GFPClass: classOf})
	src.fail(1, "a", 0, 0x20, 1)
	e.HandleEvent(&event.Event{Hugetlb: &event.Hugetlb{Call: event.CallMmap, HugeRequest: true, OK: true, HugePageSize: 2 << 20}})
	e.HandleEvent(&event.Event{Hugetlb: &event.Hugetlb{Call: event.CallMmap, AfterHugeFailure: true, OK: true}})
	reg := gatherer(e, NewHostCollector(func() sysstate.Snapshot {
		return sysstate.Take("../../host/sysstate/testdata/numa/proc", "../../host/sysstate/testdata/numa/sys")
	}))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCommLabelEscaped: dashboards display label values, so a process name
// is escaped as in every human output (text.Escape), bidi overrides, C1
// controls and backslashes included.
func TestCommLabelEscaped(t *testing.T) {
	for _, c := range []struct{ comm, label string }{
		{"postgres", "postgres"},
		{"gnp\u202eexe", `gnp\u202eexe`},
		{"csi\u009b2J", `csi\u009b2J`},
		{`\x1b`, `\\x1b`},
		{"bad\xff", `bad\xff`},
		{"\u2067iso\u2069", `\u2067iso\u2069`},
	} {
		src := newFakeSource()
		e := New(src, Options{CommLabel: true})
		reg := registry(t, e)
		e.HandleEvent(&event.Event{Kind: event.KindHugetlb, Task: event.Task{Pid: 5, Comm: c.comm},
			Hugetlb: &event.Hugetlb{Call: event.CallMmap, HugeRequest: true, Result: -12, Errno: "ENOMEM", HugePageSize: 2 << 20}})
		if v := value(t, reg, "memtrace_hugetlb_requests_total", map[string]string{"comm": c.label}); v != 1 {
			t.Errorf("comm %q: no series with comm=%q", c.comm, c.label)
		}
	}
}
