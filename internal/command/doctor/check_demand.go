package doctor

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// The measured recommendation (issue 13, docs/design/why-signals.md §3.3
// to §3.5). Once free memory falls below the low watermark kswapd wakes;
// until it has reclaimed, ordinary allocations stall at min (direct
// reclaim) while GFP_ATOMIC continues down to 3/8 of min. The part of the
// reserve only atomic requests can use is 5/8 of min, so one burst B of
// GFP_ATOMIC pages must fit there: min_z ≥ 1.6·B in the zone z that
// serves them. min_free_kbytes is spread over the low zones by size
// (__setup_per_zone_wmarks: min_z = min_free_kbytes/pageKB · M/L), hence
// min_free_kbytes ≥ 1.6·B·pageKB·L/M; twice a burst is recommended.

// demandInput is what recommendMinFree needs, from the snapshot and the
// measurement.
type demandInput struct {
	high, total uint64        // peak pages per window: GFP_ATOMIC, all atomic
	netFall     uint64        // largest fall of free pages in a window, net of frees (0: none read)
	window      time.Duration // the measuring interval
	cur, wsf    int64         // vm.min_free_kbytes, vm.watermark_scale_factor
	zones       []sysstate.ZoneFree
	memTotalKB  uint64
	pageKB      uint64
	pageblock   int // order, for khugepaged's value
}

type minFreeRecommendation struct {
	value    int64  // recommended vm.min_free_kbytes (cur when no change)
	required int64  // the least that covers one burst
	wsf      int64  // recommended watermark_scale_factor, 0: keep
	wsfBurst uint64 // the pages per window wsf is sized for
	zone     sysstate.ZoneFree
	reasons  []string
}

func recommendMinFree(in demandInput) (minFreeRecommendation, bool) {
	var r minFreeRecommendation
	why := func(format string, args ...any) { r.reasons = append(r.reasons, fmt.Sprintf(format, args...)) }
	z, ok := largestLowZone(in.zones)
	L := lowmemKB(in.zones, in.pageKB) / max(in.pageKB, 1)
	if !ok || L == 0 || in.pageKB == 0 {
		return r, false
	}
	r.zone, r.value = z, in.cur
	M := z.Managed
	share := float64(M) / float64(L)
	why("B, the peak GFP_ATOMIC (__GFP_HIGH) demand per %v, was %d pages (%s); all atomic demand peaked at %d pages (%s)",
		in.window, in.high, kb(in.high*in.pageKB), in.total, kb(in.total*in.pageKB))
	why("min_free_kbytes is spread over the low zones by size: %s gets M/L = %d/%d = %.1f%% of it, min %d pages now (%s)",
		z.Zone, M, L, 100*share, z.MinPages, kb(z.MinPages*in.pageKB))
	why("once free memory falls under low, kswapd wakes; until it catches up ordinary requests stall at min while GFP_ATOMIC may go down to 3/8 of min: 5/8 of min is theirs alone, so one burst needs min_%s ≥ 1.6·B = %d pages", z.Zone, ceilDiv(16*in.high, 10))
	r.required = int64(math.Ceil(1.6 * float64(in.high) * float64(in.pageKB) / share))
	rec := int64(math.Ceil(2 * float64(in.high) * float64(in.pageKB) / share))
	why("so min_free_kbytes ≥ 1.6·B·%d·L/M = %d; twice a burst for margin (and for __GFP_HIGH requests that can sleep, which may only use half of min): %d", in.pageKB, r.required, rec)
	if kh := khugepagedMinFree(in.zones, in.pageblock, in.pageKB); kh > 0 && kh == in.cur {
		why("the current %d is khugepaged's own value for transparent huge pages (pageblock × zones × 11); a value written to the sysctl replaces it", kh)
	}
	target := max(rec, in.cur)
	if target > in.cur {
		target = (target + 1023) / 1024 * 1024
		why("rounded up to a whole MiB: %d", target)
	} else {
		why("the current value already covers twice the peak burst")
	}
	if limit := int64(float64(in.memTotalKB)*maxMinFreeShare) / 1024 * 1024; limit > 0 && target > limit {
		target = max(limit, in.cur)
		why("capped at 5%% of memory (%s): memory under min serves only atomic and emergency requests", kb(uint64(limit)))
	}
	r.value = target
	// What a window's atomic demand took from free memory is at most
	// what free memory fell in it: gross demand freed again within the
	// window (network buffers read at once) never brought it near min.
	burst, what := in.total, "all atomic demand in one window"
	if in.netFall > 0 && in.netFall < in.total {
		burst, what = in.netFall, "free memory's largest fall in one window, net of frees"
		why("all atomic demand peaked at %d pages in one window but free memory fell at most %d pages in one: the rest was freed within the window, so the fall is the burst the low−min gap must hold", in.total, in.netFall)
	}
	if gap := z.LowPages - min(z.LowPages, z.MinPages); burst > gap {
		w := int64(ceilDiv(10000*burst, max(M, 1)))
		if w > in.wsf {
			r.wsf = min(w, 3000)
			r.wsfBurst = burst
			why("%s (%d pages) exceeds the low−min gap of %s (%d pages): kswapd would wake too late and ordinary allocations hit min during a burst; watermark_scale_factor ≥ 10000·%d/M = %d widens it", what, burst, z.Zone, gap, burst, r.wsf)
		}
	}
	return r, true
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// largestLowZone is the zone most of min_free_kbytes goes to.
func largestLowZone(zones []sysstate.ZoneFree) (sysstate.ZoneFree, bool) {
	var low []sysstate.ZoneFree
	for _, z := range zones {
		if z.Zone != "HighMem" && z.Zone != "Movable" {
			low = append(low, z)
		}
	}
	return largestZone(low)
}

// khugepagedMinFree is set_recommended_min_free_kbytes: with THP enabled,
// khugepaged raises min_free_kbytes to pageblock·zones·(2 + 3·3) pages,
// at most 5% of low memory.
func khugepagedMinFree(zones []sysstate.ZoneFree, pageblock int, pageKB uint64) int64 {
	if pageblock <= 0 {
		return 0
	}
	n := uint64(0)
	for _, z := range zones {
		if z.Managed > 0 && z.Zone != "HighMem" && z.Zone != "Movable" {
			n++
		}
	}
	v := (uint64(1) << pageblock) * n * 11
	v = min(v, lowmemKB(zones, pageKB)/max(pageKB, 1)/20)
	return int64(v * pageKB)
}

// checkAtomicDemand turns `--measure` into the recommended min_free_kbytes.
func checkAtomicDemand(in *Inputs) Finding {
	f := Finding{ID: "atomic-demand", Title: "Measured atomic demand and vm.min_free_kbytes"}
	m := in.Measured
	d := m.Demand
	f.add("measured", "%v in %v windows on %s%s", d.Measured.Round(time.Millisecond), d.Interval, m.Hook, map[bool]string{true: " (interrupted)"}[m.Interrupted])
	pk := pageKB()
	peak := func(p event.AtomicDemand) string {
		return fmt.Sprintf("%s GFP_ATOMIC, %s other", kb(p.HighPages*pk), kb(p.OtherPages*pk))
	}
	f.add("atomic demand", "%s in total", peak(d.Total))
	f.add("peak per "+d.Interval.String(), "%s GFP_ATOMIC, %s all atomic", kb(d.PerInterval.High.Pages*pk), kb(d.PerInterval.Total.Pages*pk))
	if !d.PerSecond.Total.At.IsZero() {
		f.add("peak per second", "%s GFP_ATOMIC, %s all atomic", kb(d.PerSecond.High.Pages*pk), kb(d.PerSecond.Total.Pages*pk))
	}
	f.add("largest fall of free memory", "%s within %v (net of frees)", kb(m.MaxDropKB), d.Interval)
	if s := peakSource(m.Sources); s != "" {
		f.add("largest sampled source", "%s", s)
	}
	fl := m.Failures
	f.add("allocation failures meanwhile", "%d (%d atomic, %d THP fallbacks)", fl.Total, fl.Atomic, fl.THPFallback)
	for _, v := range []event.ZoneVerdict{event.VerdictBelowMin, event.VerdictFragmented, event.VerdictNeither} {
		if n := fl.Verdicts[v]; n > 0 {
			f.add("  zone verdict "+string(v), "%d of the failures sent as events", n)
		}
	}
	if d.Readings == 0 {
		f.Severity = Warn
		f.Summary = "nothing measured: the measurement ended before two readings"
		return f
	}
	sc := in.Snap.Sysctl
	r, ok := recommendMinFree(demandInput{
		high: d.PerInterval.High.Pages, total: d.PerInterval.Total.Pages, netFall: m.MaxDropKB / max(pk, 1), window: d.Interval,
		cur: sc.MinFreeKbytes, wsf: sc.WatermarkScaleFactor, zones: in.Snap.Buddy,
		memTotalKB: in.Snap.Memory.MemTotalKB, pageKB: pk, pageblock: in.Snap.PageblockOrder,
	})
	if !ok {
		f.Severity = Warn
		f.Summary = "the zones could not be read: no recommendation"
		return f
	}
	f.Notes = r.reasons
	f.note("the window is %v: kswapd normally starts within it; its wake latency is not measured by this build", d.Interval)
	f.note("the demand is gross pages allocated, an upper bound on what a burst holds at once (network receive pages are freed quickly); allocations of the bulk allocator (page_pool, sunrpc) are not counted")
	f.Why = "Requests that cannot sleep (network receive, interrupts, GFP_ATOMIC) live on the free memory above the min watermark; vm.min_free_kbytes sizes it, and one burst of them must fit in the part only they may use."
	least := fmt.Sprintf("at least %d", r.required)
	if r.required == 0 {
		least = "no GFP_ATOMIC demand measured"
	}
	f.add("recommended vm.min_free_kbytes", "%d (%s; now %d, %s; %s)", r.value, kb(uint64(r.value)), sc.MinFreeKbytes, kb(uint64(max(sc.MinFreeKbytes, 0))), least)
	switch {
	case sc.MinFreeKbytes < r.required:
		f.Severity = Warn
		if fl.Verdicts[event.VerdictBelowMin] > 0 && fl.Atomic > 0 {
			f.Severity = Problem
		}
		f.Summary = fmt.Sprintf("a burst like the measured peak would exhaust the atomic reserve: raise vm.min_free_kbytes from %d to %d", sc.MinFreeKbytes, r.value)
	case r.value > sc.MinFreeKbytes:
		f.Summary = fmt.Sprintf("the reserve covers the measured peak, with less than twice its margin: %d would give it", r.value)
	default:
		f.Summary = fmt.Sprintf("vm.min_free_kbytes = %d covers twice the measured peak burst", sc.MinFreeKbytes)
	}
	if r.value > sc.MinFreeKbytes {
		if sc.MinFreeKbytes > 0 {
			f.note("with it, %s", projected(r.zone, sc, r.value, pk))
		}
		f.Fix = append(f.Fix,
			fmt.Sprintf("sysctl -w vm.min_free_kbytes=%d", r.value),
			fmt.Sprintf("echo 'vm.min_free_kbytes = %d' > /etc/sysctl.d/90-memtrace-min-free.conf", r.value))
	}
	compactionAdvice(&f, m, sc)
	if r.wsf > 0 {
		// The summary says why the finding warns: a summary saying only
		// that min_free_kbytes covers the peak, under WARN, left the
		// reader to find the watermark_scale_factor among the notes.
		f.raise(Warn)
		f.Summary += fmt.Sprintf("; a burst of atomic demand in one %v (%s) outruns the low−min gap: raise vm.watermark_scale_factor from %d to %d",
			d.Interval, kb(r.wsfBurst*pk), sc.WatermarkScaleFactor, r.wsf)
		f.Fix = append(f.Fix, fmt.Sprintf("sysctl -w vm.watermark_scale_factor=%d", r.wsf))
	}
	return f
}

// compactionAdvice: failures that found free memory but no free block of
// their order are fragmentation, which a larger reserve does not cure (it
// keeps more memory free, not in larger blocks); compaction makes the
// blocks, and the kernel may have been told not to (sc, the host's
// sysctls: -1 where the kernel has no such sysctl).
func compactionAdvice(f *Finding, m *Measurement, sc sysstate.Sysctl) {
	n := m.Failures.Verdicts[event.VerdictFragmented]
	if n == 0 {
		return
	}
	f.raise(Warn)
	f.note("%d of the failures sent as events found free memory but no free block of their order: a larger reserve keeps more memory free, not in larger blocks; compaction makes those blocks", n)
	var off []string
	if sc.CompactionProactiveness == 0 {
		off = append(off, "proactive compaction is off (vm.compaction_proactiveness 0)")
		f.Fix = append(f.Fix, "sysctl -w vm.compaction_proactiveness=20   # kcompactd keeps compacting in the background (the kernel's default)")
	}
	if sc.CompactUnevictableAllowed == 0 {
		off = append(off, "compaction may not move locked pages (vm.compact_unevictable_allowed 0)")
		f.Fix = append(f.Fix, "sysctl -w vm.compact_unevictable_allowed=1   # compaction may move mlocked pages (the kernel's default)")
	}
	f.Fix = append(f.Fix, "echo 1 > /proc/sys/vm/compact_memory   # compacts every zone once, now")
	if len(off) > 0 {
		f.note("%s", strings.Join(off, "; "))
		f.Summary += fmt.Sprintf("; %d failures were fragmentation and %s: turn it back on", n, strings.Join(off, ", "))
		return
	}
	f.Summary += fmt.Sprintf("; %d failures were fragmentation: compact now, and raise vm.compaction_proactiveness if they recur", n)
}
