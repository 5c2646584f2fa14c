package doctor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// hostZones are the zones of the design note's worked example (§3.3):
// min_free_kbytes 67584 (khugepaged's), watermark_scale_factor 10.
var hostZones = []sysstate.ZoneFree{
	{Node: 0, Zone: "DMA", Managed: 3840, MinPages: 18, LowPages: 22, HighPages: 26},
	{Node: 0, Zone: "DMA32", Managed: 772848, MinPages: 3806, LowPages: 4757, HighPages: 5708},
	{Node: 0, Zone: "Normal", Managed: 2654208, MinPages: 13071, LowPages: 16338, HighPages: 19605},
	{Node: 0, Zone: "Movable"},
}

// TestRecommendMinFreeWorkedExample: B = 10000 pages per 100 ms, L/M =
// 3430896/2654208: at least 1.6·B·4·L/M = 82728.07, 82729 kB, twice a burst 103410
// kB, rounded up to 101 MiB; the burst is wider than low−min (3267
// pages), so watermark_scale_factor ≥ ceil(10000·10000/M) = 38.
func TestRecommendMinFreeWorkedExample(t *testing.T) {
	r, ok := recommendMinFree(demandInput{
		high: 10000, total: 10000, window: 100 * time.Millisecond, cur: 67584, wsf: 10,
		zones: hostZones, memTotalKB: 13723584, pageKB: 4, pageblock: 9,
	})
	if !ok {
		t.Fatal("no recommendation")
	}
	if r.required != 82729 || r.value != 103424 || r.wsf != 38 || r.zone.Zone != "Normal" {
		t.Errorf("required %d, value %d, wsf %d, zone %s", r.required, r.value, r.wsf, r.zone.Zone)
	}
	text := strings.Join(r.reasons, "\n")
	for _, want := range []string{"khugepaged's own value", "3/8 of min", "1.6·B = 16000 pages", "≥ 10000·10000/M = 38"} {
		if !strings.Contains(text, want) {
			t.Errorf("reasoning lacks %q:\n%s", want, text)
		}
	}
}

func TestRecommendMinFreeBounds(t *testing.T) {
	in := demandInput{window: 100 * time.Millisecond, cur: 67584, wsf: 10, zones: hostZones, memTotalKB: 13723584, pageKB: 4}
	// No GFP_ATOMIC demand: keep the value.
	if r, _ := recommendMinFree(in); r.value != 67584 || r.wsf != 0 {
		t.Errorf("no demand: %+v", r)
	}
	// A huge burst: capped at 5% of memory.
	in.high, in.total = 200000, 200000
	if r, _ := recommendMinFree(in); r.value != 686080 || r.wsf != 754 {
		t.Errorf("capped: value %d wsf %d", r.value, r.wsf)
	}
	// Never below the current value.
	in.high, in.total, in.cur = 100, 100, 500000
	if r, _ := recommendMinFree(in); r.value != 500000 {
		t.Errorf("lowered the reserve: %d", r.value)
	}
	if _, ok := recommendMinFree(demandInput{pageKB: 4}); ok {
		t.Error("a recommendation without zones")
	}
}

// hostInputs are this host's zones and vm sysctls, before any measurement.
func hostInputs() *Inputs {
	return &Inputs{Snap: sysstate.Snapshot{Buddy: hostZones, PageblockOrder: 9,
		Sysctl: sysstate.Sysctl{MinFreeKbytes: 67584, WatermarkScaleFactor: 10}, Memory: sysstate.Memory{MemTotalKB: 13723584}}}
}

// measured is one second of atomic demand read every 100 ms through hook:
// highPages and otherPages in all, peak pages in the busiest interval.
func measured(hook string, highPages, otherPages, peak uint64) *Measurement {
	return &Measurement{Asked: time.Second, Hook: hook, Demand: demand.Summary{
		Interval: 100 * time.Millisecond, Readings: 10, Measured: time.Second,
		Total:       event.AtomicDemand{HighPages: highPages, OtherPages: otherPages},
		PerInterval: demand.Peaks{High: demand.Peak{Pages: peak}, Total: demand.Peak{Pages: peak}},
	}}
}

func TestCheckAtomicDemand(t *testing.T) {
	in := hostInputs()
	in.Measured = measured("tp_btf/mm_page_alloc", 20000, 5, 10000)
	in.Measured.Sources = []event.AtomicSource{{Task: event.Task{Pid: 7, Comm: "swapper/0"}, Context: event.ContextSoftirq, High: true, Samples: 3, SampledPages: 3, EstimatedPages: 192}}
	f := checkAtomicDemand(in)
	if f.Severity != Warn || !strings.Contains(f.Summary, "raise vm.min_free_kbytes from 67584 to 103424") {
		t.Errorf("%v: %s", f.Severity, f.Summary)
	}
	if len(f.Fix) != 3 || f.Fix[0] != "sysctl -w vm.min_free_kbytes=103424" || f.Fix[2] != "sysctl -w vm.watermark_scale_factor=38" {
		t.Errorf("fix %q", f.Fix)
	}
	found := false
	for _, e := range f.Evidence {
		found = found || strings.Contains(e.Value, "softirq, interrupting swapper/0 (pid 7): about 192 pages ("+kb(192*pageKB())+") GFP_ATOMIC")
	}
	if !found {
		t.Errorf("no largest source in %+v", f.Evidence)
	}
	// Measured failures below min with atomic requests: a problem.
	in.Measured.Failures = MeasuredFailures{Total: 3, Atomic: 3, Verdicts: map[event.ZoneVerdict]uint64{event.VerdictBelowMin: 2}}
	if f := checkAtomicDemand(in); f.Severity != Problem {
		t.Errorf("atomic failures below min: %v", f.Severity)
	}
	// Enough reserve for GFP_ATOMIC, but all atomic demand wider than
	// low−min: the summary of the warning names the scale factor, not
	// only that min_free_kbytes covers the peak (as doctor --measure
	// printed under WARN with 311 MiB of loopback traffic per 100 ms).
	in.Measured.Failures = MeasuredFailures{}
	in.Snap.Sysctl.MinFreeKbytes = 204800
	in.Measured.Demand.PerInterval.Total.Pages = 79622
	f = checkAtomicDemand(in)
	if f.Severity != Warn || !strings.Contains(f.Summary, "covers twice the measured peak burst") ||
		!strings.Contains(f.Summary, "raise vm.watermark_scale_factor from 10 to 300") {
		t.Errorf("scale factor alone: %v: %s (fix %q)", f.Severity, f.Summary, f.Fix)
	}
	// Most of it freed within the window (free memory fell 24.1 MiB while
	// 219 MiB were allocated, as with loopback traffic here): the gap is
	// sized for the fall, 6170 pages, not for the gross demand.
	in.Measured.MaxDropKB = 6170 * pageKB()
	f = checkAtomicDemand(in)
	if !strings.Contains(f.Summary, "raise vm.watermark_scale_factor from 10 to 24") ||
		!strings.Contains(strings.Join(f.Notes, "\n"), "free memory fell at most 6170 pages in one") {
		t.Errorf("sized for the gross demand, not the fall: %s\n%s", f.Summary, strings.Join(f.Notes, "\n"))
	}
	in.Measured.MaxDropKB = 0
	// Enough reserve: ok.
	in.Measured.Demand.PerInterval.Total.Pages = 10000
	in.Snap.Sysctl.MinFreeKbytes, in.Snap.Sysctl.WatermarkScaleFactor = 204800, 100
	if f := checkAtomicDemand(in); f.Severity != OK || len(f.Fix) != 0 {
		t.Errorf("enough reserve: %v %s %q", f.Severity, f.Summary, f.Fix)
	}
}

// TestCompactionAdvice: failures that were fragmentation add compaction
// to the fix, and name what turned it off (as the lab's guest had it).
func TestCompactionAdvice(t *testing.T) {
	in := hostInputs()
	in.Measured = measured("fexit/__alloc_pages", 20, 5, 10)
	if f := checkAtomicDemand(in); slices.ContainsFunc(f.Fix, func(s string) bool { return strings.Contains(s, "compact") }) {
		t.Errorf("compaction advised without fragmented failures: %q", f.Fix)
	}
	in.Measured.Failures = MeasuredFailures{Total: 18, Atomic: 18, Verdicts: map[event.ZoneVerdict]uint64{event.VerdictFragmented: 18}}
	in.Snap.Sysctl.CompactionProactiveness, in.Snap.Sysctl.CompactUnevictableAllowed = 0, 0
	f := checkAtomicDemand(in)
	want := []string{
		"sysctl -w vm.compaction_proactiveness=20   # kcompactd keeps compacting in the background (the kernel's default)",
		"sysctl -w vm.compact_unevictable_allowed=1   # compaction may move mlocked pages (the kernel's default)",
		"echo 1 > /proc/sys/vm/compact_memory   # compacts every zone once, now",
	}
	for _, w := range want {
		if !slices.Contains(f.Fix, w) {
			t.Errorf("fix %q lacks %q", f.Fix, w)
		}
	}
	if f.Severity < Warn || !strings.Contains(f.Summary, "18 failures were fragmentation and proactive compaction is off") {
		t.Errorf("%v: %s", f.Severity, f.Summary)
	}
	// Compaction on (the kernel's defaults), or a kernel without the
	// sysctls (-1): compact now, nothing to turn on.
	in.Snap.Sysctl.CompactionProactiveness, in.Snap.Sysctl.CompactUnevictableAllowed = 20, -1
	f = checkAtomicDemand(in)
	if slices.ContainsFunc(f.Fix, func(s string) bool {
		return strings.Contains(s, "compaction_proactiveness=") || strings.Contains(s, "unevictable")
	}) ||
		!slices.Contains(f.Fix, want[2]) || !strings.Contains(f.Summary, "compact now") {
		t.Errorf("compaction on: %s, fix %q", f.Summary, f.Fix)
	}
}
