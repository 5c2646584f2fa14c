package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// TestCaptureStallsAndZones provokes memcg reclaim (a process reading a
// file four times its cgroup's limit), direct compaction (a process
// growing the huge page pool on fragmented memory) and allocation
// failures, and finds them in the document as written and read back: the
// reclaim and compaction sections count each process's stalls exactly as
// tracefs counted its events, with their time and outcomes, and the
// failures' burst is in zone_states.
func TestCaptureStallsAndZones(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = event.AllSignals
	stop := startCapture(t, cfg)
	rec, errR := provoke.MemcgReclaim(provoke.WithComm("mt-cap-recl"))
	comp, errC := provoke.Compaction(3, provoke.WithComm("mt-cap-comp"))
	alloc, errA := provoke.AllocFailures(5, provoke.WithComm("mt-cap-alloc"))
	doc := stop()
	for _, err := range []error{errR, errC, errA} {
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := Write("-", &buf, doc); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var reclaim []event.ReclaimAggregate
	var compaction []event.CompactionAggregate
	if err := json.Unmarshal(back.Sections["reclaim"], &reclaim); err != nil {
		t.Fatalf("reclaim section: %v", err)
	}
	if err := json.Unmarshal(back.Sections["compaction"], &compaction); err != nil {
		t.Fatalf("compaction section: %v", err)
	}

	if errR != nil {
		t.Logf("memcg reclaim not provoked: %v", errR)
	} else {
		var n, timed uint64
		for _, r := range reclaim {
			if int(r.Pid) == rec.Pid && r.Kind == event.StallMemcgReclaim {
				n += r.Count
				timed += r.Histogram.Count()
			}
		}
		begins := rec.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"]
		t.Logf("memcg reclaim of pid %d: capture %d stalls (%d timed), tracefs %d", rec.Pid, n, timed, begins)
		if n != begins || timed != n || n == 0 {
			t.Errorf("memcg reclaim stalls of pid %d: capture %d (%d in histograms), tracefs %d", rec.Pid, n, timed, begins)
		}
		if !hasEvent(back, rec.Pid, event.KindReclaimStall) {
			t.Error("no reclaim_stall event of the reader")
		}
	}

	if errC != nil {
		t.Logf("compaction not provoked: %v", errC)
	} else {
		var calls, outcomes uint64
		for _, c := range compaction {
			if int(c.Pid) == comp.Pid && c.Kind == event.StallCompaction {
				calls += c.Count
				for _, o := range c.Outcomes {
					outcomes += o.Count
					if o.Name == "" || o.Name == fmt.Sprint(o.Value) {
						t.Errorf("outcome %d without its kernel name", o.Value)
					}
				}
			}
		}
		try := comp.Counts["compaction:mm_compaction_try_to_compact_pages"]
		t.Logf("compaction by pid %d: capture %d calls, tracefs %d", comp.Pid, calls, try)
		if calls != try || outcomes != calls || calls == 0 {
			t.Errorf("compaction calls of pid %d: capture %d (%d by outcome), tracefs %d", comp.Pid, calls, outcomes, try)
		}
	}

	if errA != nil {
		t.Fatalf("allocation failures not provoked: %v", errA)
	}
	var burst, others bool
	for _, b := range back.ZoneStates {
		if int(b.Pid) == alloc.Pid {
			burst = b.Summary != "" && len(b.Zones) > 0 && b.ReadAfterNs >= 0 && b.Failures > 0
			t.Logf("burst of pid %d: %d failures, read %d ns after: %s", alloc.Pid, b.Failures, b.ReadAfterNs, b.Summary)
		}
		others = others || int(b.Pid) != alloc.Pid
	}
	// A burst is host-wide: on a busy host (another suite's failures)
	// the child's failures may come within another process's burst and
	// be judged against its reading. Then its events must carry that
	// judgement; its own burst is required only when no other process's
	// failure made one.
	judged := 0
	for _, ev := range back.Events {
		if int(ev.Pid) == alloc.Pid && ev.AllocFailure != nil && ev.AllocFailure.ZoneState != nil && ev.AllocFailure.ZoneState.Summary != "" {
			judged++
		}
	}
	switch {
	case !burst && others && judged > 0:
		t.Logf("pid %d's %d failure events were judged within other processes' bursts", alloc.Pid, judged)
	case !burst:
		t.Errorf("zone_states has no burst of pid %d (%d of its events judged): %+v", alloc.Pid, judged, back.ZoneStates)
	}
	d := back.AtomicDemand
	if d == nil || d.Readings == 0 || d.Error != "" {
		t.Errorf("atomic_demand %+v", d)
	}
	for _, p := range back.Processes {
		if int(p.Pid) == alloc.Pid && p.AllocFailures != alloc.Events {
			t.Errorf("processes: pid %d has %d failures, tracefs %d", p.Pid, p.AllocFailures, alloc.Events)
		}
	}
}

func hasEvent(doc *Document, pid int, kind event.Kind) bool {
	for _, ev := range doc.Events {
		if int(ev.Pid) == pid && ev.Kind == kind {
			return true
		}
	}
	return false
}

// TestCaptureAtomicDemand sends traffic over loopback under a capture
// filtered to its comm: atomic_demand's totals are what the kernel counted
// over the whole window (read again once the traffic is over), and the
// part read around the traffic matches every atomic mm_page_alloc tracefs
// saw of the same threads.
func TestCaptureAtomicDemand(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	cfg.Comm = "mt-cap-atomic"
	var src event.DemandSource
	var tab *gfp.Table
	stop := startCaptureWith(t, cfg, func(s event.Source) {
		src, _ = s.(event.DemandSource)
		if g, ok := s.(interface{ GFP() *gfp.Table }); ok {
			tab = g.GFP()
		}
	})
	if src == nil || tab == nil {
		stop()
		t.Fatal("the session does not count atomic demand, or has no GFP table")
	}
	dr, ok1 := tab.Bit("__GFP_DIRECT_RECLAIM")
	high, ok2 := tab.Bit("__GFP_HIGH")
	if !ok1 || !ok2 {
		stop()
		t.Fatalf("GFP table (%s) lacks __GFP_DIRECT_RECLAIM or __GFP_HIGH", tab.Source())
	}
	var marks []event.AtomicDemand
	rep, err := provoke.LoopbackTraffic(16<<20, fmt.Sprintf("!(gfp_flags & %d)", dr), func() {
		d, err := src.AtomicDemand()
		if err != nil {
			t.Error(err)
		}
		marks = append(marks, d)
	}, provoke.WithComm(cfg.Comm))
	doc := stop()
	if err != nil {
		t.Fatal(err)
	}
	var want event.AtomicDemand
	for _, a := range rep.Allocs {
		if mask := parseMask(t, tab, a.GFP); mask&dr != 0 {
			t.Fatalf("tracefs filter let through a sleeping allocation: %s", a.GFP)
		} else if mask&high != 0 {
			want.HighPages += 1 << a.Order
		} else {
			want.OtherPages += 1 << a.Order
		}
	}
	got := marks[1].Sub(marks[0])
	d := doc.AtomicDemand
	if d == nil || d.Error != "" {
		t.Fatalf("atomic_demand %+v", d)
	}
	t.Logf("loopback: capture %+v over %d readings (peaks %d/100ms, %d/s); around the traffic: memtrace %+v, tracefs %+v",
		d.Total, d.Readings, d.PerInterval.Total.Pages, d.PerSecond.Total.Pages, got, want)
	if got != want || want.Total() == 0 {
		t.Errorf("atomic demand around the traffic: memtrace %+v, tracefs %+v", got, want)
	}
	// The meter's first reading is at the start (zero: nothing of this
	// comm yet) and its last after the traffic: it holds at least what
	// the kernel counted by the end of the traffic.
	if d.Total.HighPages < marks[1].HighPages || d.Total.OtherPages < marks[1].OtherPages {
		t.Errorf("capture total %+v, less than the kernel's %+v", d.Total, marks[1])
	}
	if d.PerInterval.Total.Pages == 0 || d.PerInterval.Total.Pages > d.Total.Total() || d.PerSecond.Total.Pages > d.Total.Total() {
		t.Errorf("peaks %+v / %+v of a total %+v", d.PerInterval.Total, d.PerSecond.Total, d.Total)
	}
	for _, s := range d.Sources {
		if s.Comm != cfg.Comm {
			t.Errorf("source %q in a capture filtered to %q", s.Comm, cfg.Comm)
		}
	}
}

// parseMask turns the kernel's printed names back into the mask.
func parseMask(t *testing.T, tab *gfp.Table, s string) uint64 {
	t.Helper()
	masks := map[string]uint64{}
	for _, e := range tab.Entries() {
		if _, dup := masks[e.Name]; !dup {
			masks[e.Name] = e.Mask
		}
	}
	var m uint64
	for _, name := range strings.Split(s, "|") {
		if v, ok := masks[name]; ok {
			m |= v
			continue
		}
		v, err := strconv.ParseUint(name, 0, 64)
		if err != nil && name != "none" {
			t.Fatalf("unknown GFP name %q in %q", name, s)
		}
		m |= v
	}
	return m
}
