package doctor

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

type minFreeInput struct {
	cur         int64 // vm.min_free_kbytes now
	memTotalKB  uint64
	lowmemKB    uint64
	groups      []FailureGroup
	belowMin    bool // a zone is below min now
	fragmented  bool // a zone has no block of a failing or order-1..3 size now
	burstKB     uint64
	interval    time.Duration
	sampleEvery time.Duration
}

type minFreeSuggestion struct {
	value   int64
	reasons []string
}

// Bounds of a suggestion.
const (
	// maxMinFreeShare caps min_free_kbytes at 5% of memory: memory under
	// the min watermark serves only atomic and emergency requests, so more
	// starves the page cache and keeps kswapd reclaiming.
	maxMinFreeShare = 0.05
	// The kernel's own default is sqrt(16 * lowmem kB), clamped (since
	// 5.7; the cap was 65536 before).
	kernelMinFreeFloor = 128
	kernelMinFreeCap   = 262144
	seedMinFree        = 512000
)

// suggestMinFree follows the seed's logic: min_free_kbytes must be above
// the size of one burst of atomic allocations. Atomic (__GFP_HIGH)
// requests may use the free memory under the min watermark down to about
// half of it, so the reserve one burst can draw on is about
// min_free_kbytes/2: a burst that used it up (a failure with the zone at
// or below min) or that found it fragmented calls for doubling it; a
// burst measured over --interval calls for at least twice its size.
func suggestMinFree(in minFreeInput) minFreeSuggestion {
	var s minFreeSuggestion
	why := func(format string, args ...any) { s.reasons = append(s.reasons, fmt.Sprintf(format, args...)) }
	cur := max(in.cur, 0)
	target := cur
	why("now atomic requests can dip about %s (min_free_kbytes/2) into the reserve before failing", kb(uint64(cur/2)))

	var atomicOrders []string
	atomic := 0
	exhausted, fragmented := false, false
	for _, g := range in.groups {
		if !g.Atomic() {
			continue
		}
		atomic += g.Count
		o := fmt.Sprint(g.Order)
		if !slices.Contains(atomicOrders, o) {
			atomicOrders = append(atomicOrders, o)
		}
		for _, z := range g.Example.Zones {
			if z.Zone == "DMA" {
				continue
			}
			if z.BelowMin() {
				exhausted = true
			} else if n, ok := z.BlocksAtLeast(g.Order); ok && g.Order >= 1 && n == 0 {
				fragmented = true
			}
		}
	}
	if atomic > 0 {
		target = max(target, 2*cur)
		why("%d atomic failures of order %s in the log: a burst outran the reserve, so double it (kswapd then also wakes and compacts earlier, as low and high move up with min)", atomic, strings.Join(atomicOrders, ", "))
		if exhausted {
			why("when it failed a zone was at or below its min watermark: the reserve itself ran out")
		}
		if fragmented {
			why("when it failed the zone had memory free but no block of the order asked for: compaction did not keep up (before RHEL 6.4, kswapd did not compact at all, the seed's case)")
		}
	}
	if in.belowMin {
		target = max(target, 2*cur)
		why("a zone is below its min watermark now: allocations are reclaiming directly")
	}
	if in.fragmented && atomic == 0 {
		target = max(target, 2*cur)
		why("a zone has no free block for the next order-1..3 request: a larger reserve gives kswapd and kcompactd room to rebuild them")
	}
	if in.burstKB > 0 {
		step := in.sampleEvery
		if 2*in.burstKB > uint64(target) && (atomic > 0 || in.belowMin || in.fragmented) {
			target = int64(2 * in.burstKB)
		}
		why("the largest fall of free memory within %v over the %s measured was %s; min_free_kbytes should be at least twice a burst (%s)", step, duration(in.interval), kb(in.burstKB), kb(2*in.burstKB))
	}
	if target == cur {
		s.value = cur
		return s
	}
	def := kernelDefault(in.lowmemKB)
	if target < def {
		target = def
		why("the kernel's own default for %s of low memory is %s", kb(in.lowmemKB), kb(uint64(def)))
	}
	if limit := int64(float64(in.memTotalKB) * maxMinFreeShare); limit > 0 && target > limit {
		target = max(limit, cur)
		why("capped at 5%% of memory (%s): pages under the min watermark serve only atomic and emergency requests, so more would starve the page cache", kb(uint64(limit)))
	}
	target = (target + 1023) / 1024 * 1024
	why("for scale, the seed's host used vm.min_free_kbytes = %d (%s)", seedMinFree, kb(seedMinFree))
	s.value = target
	return s
}

// kernelDefault is init_per_zone_wmark_min's min_free_kbytes.
func kernelDefault(lowmemKB uint64) int64 {
	v := int64(math.Sqrt(float64(lowmemKB) * 16))
	return min(max(v, kernelMinFreeFloor), kernelMinFreeCap)
}
