package doctor

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

// networkOrders are the orders a network-heavy host allocates atomically
// all the time: order-1 sockets and skb heads (the seed's sk_clone),
// order-2/3 jumbo frames and SLUB slabs. With no block of them left, the
// next burst fails.
var networkOrders = []int{1, 2, 3}

func pageKB() uint64 { return uint64(os.Getpagesize() / 1024) }

func checkWatermarks(in *Inputs, groups []FailureGroup) Finding {
	f := Finding{ID: "watermarks", Title: "Watermarks and reserves"}
	sc := in.Snap.Sysctl
	zones := in.Snap.Buddy
	if len(zones) == 0 {
		f.Severity = Warn
		f.Summary = "could not read the zones (/proc/buddyinfo, /proc/zoneinfo); see the read errors"
		return f
	}
	pk := pageKB()
	f.add("vm.min_free_kbytes", "%d (%s)", sc.MinFreeKbytes, kb(uint64(max(sc.MinFreeKbytes, 0))))
	f.add("vm.watermark_scale_factor", "%d (low and high sit %s of memory above min)", sc.WatermarkScaleFactor, pct(float64(sc.WatermarkScaleFactor), 10000))
	f.add("vm.watermark_boost_factor", "%d", sc.WatermarkBoostFactor)
	if in.Later != nil {
		f.add("largest fall of free memory", "%s within %v, over %s (a lower bound on one allocation burst)", kb(in.MaxDropKB), in.SampleEvery, intervalSpan(in))
	}

	if m := in.Measured; m != nil {
		f.add("measured atomic demand", "peak %s GFP_ATOMIC, %s all atomic per %v (the atomic-demand finding sizes min_free_kbytes from it)",
			kb(m.Demand.PerInterval.High.Pages*pk), kb(m.Demand.PerInterval.Total.Pages*pk), m.Demand.Interval)
	}
	failed := failedOrders(groups)
	orders := slices.Clone(networkOrders)
	for _, o := range failed {
		if !slices.Contains(orders, o) {
			orders = append(orders, o)
		}
	}
	slices.Sort(orders)

	t := Table{Title: "zones (free blocks counted at or above each order)",
		Header: []string{"node", "zone", "free", "min", "low", "high", "largest free"}}
	for _, o := range orders {
		t.Header = append(t.Header, "order≥"+strconv.Itoa(o))
	}
	t.Header = append(t.Header, "state")

	var belowMin, belowLow []string
	noFailed, noNet := zoneOrders{}, zoneOrders{}
	for _, z := range zones {
		if z.Managed == 0 && z.FreePages == 0 {
			continue
		}
		name := fmt.Sprintf("node %d %s", z.Node, z.Zone)
		state := "ok"
		switch {
		case z.HighPages > 0 && z.FreePages < z.MinPages:
			state = "below min"
			belowMin = append(belowMin, name)
		case z.HighPages > 0 && z.FreePages < z.LowPages:
			state = "below low"
			belowLow = append(belowLow, name)
		}
		row := []string{strconv.Itoa(z.Node), z.Zone, kb(z.FreePages * pk), kb(z.MinPages * pk), kb(z.LowPages * pk), kb(z.HighPages * pk), orderSize(z.MaxFreeOrder(), pk)}
		for _, o := range orders {
			n := blocksAtLeast(z, o)
			row = append(row, strconv.FormatUint(n, 10))
			// The DMA zone is kept for old devices by lowmem_reserve; it
			// having no large blocks matters to nobody.
			if n == 0 && z.Zone != "DMA" {
				if slices.Contains(failed, o) {
					noFailed.add(name, o)
				} else if slices.Contains(networkOrders, o) {
					noNet.add(name, o)
				}
				if state == "ok" {
					state = "no order " + strconv.Itoa(o)
				}
			}
		}
		t.Rows = append(t.Rows, append(row, state))
	}
	f.Tables = append(f.Tables, t)

	var problems []string
	switch {
	case len(belowMin) > 0:
		f.raise(Problem)
		problems = append(problems, "free memory below the min watermark in "+strings.Join(belowMin, ", "))
	case len(belowLow) > 0:
		f.raise(Warn)
		problems = append(problems, "free memory below the low watermark in "+strings.Join(belowLow, ", ")+" (kswapd is reclaiming)")
	}
	if len(noFailed.zones) > 0 {
		f.raise(Problem)
		problems = append(problems, "no free block of an order that failed in "+noFailed.String())
	}
	if len(noNet.zones) > 0 {
		f.raise(Warn)
		problems = append(problems, "no free block for the next order-1..3 atomic request in "+noNet.String())
	}
	atomicFails := 0
	for _, g := range groups {
		if g.Atomic() {
			atomicFails += g.Count
		}
	}
	if atomicFails > 0 {
		f.raise(Problem)
		problems = append(problems, fmt.Sprintf("%d atomic allocation failures in the log", atomicFails))
	}
	if len(problems) == 0 {
		f.Summary = fmt.Sprintf("every zone is above its low watermark with blocks of order %d and up free", orders[len(orders)-1])
		f.Why = "Atomic requests (network receive, interrupts) cannot wait for reclaim: they live on the free memory above the min watermark, in blocks of their order."
		return f
	}
	f.Summary = strings.Join(problems, "; ")
	f.Why = "Atomic requests cannot reclaim or compact: they are served from free memory above the min watermark (down to about half of it for GFP_ATOMIC), in a block of their order, or they fail; a larger min_free_kbytes keeps more memory free and wakes kswapd earlier."

	s := suggestMinFree(minFreeInput{
		cur: sc.MinFreeKbytes, memTotalKB: in.Snap.Memory.MemTotalKB, lowmemKB: lowmemKB(zones, pk),
		groups: groups, belowMin: len(belowMin) > 0, fragmented: len(noFailed.zones)+len(noNet.zones) > 0,
		burstKB: in.MaxDropKB, interval: in.Interval, sampleEvery: in.SampleEvery,
	})
	f.Notes = append(f.Notes, s.reasons...)
	if atomicFails > 0 && in.Log != nil && !in.Log.Live {
		f.note("the failures come from %s and the zones and sysctls from this host: if that log is another host's, size min_free_kbytes there, from its own value", in.Log.Source)
	}
	if s.value > sc.MinFreeKbytes {
		f.add("suggested vm.min_free_kbytes", "%d (%s, now %s)", s.value, kb(uint64(s.value)), kb(uint64(max(sc.MinFreeKbytes, 0))))
		if z, ok := largestZone(zones); ok && sc.MinFreeKbytes > 0 {
			f.note("with it, %s", projected(z, sc, s.value, pk))
		}
		f.Fix = append(f.Fix,
			fmt.Sprintf("sysctl -w vm.min_free_kbytes=%d", s.value),
			fmt.Sprintf("echo 'vm.min_free_kbytes = %d' > /etc/sysctl.d/90-memtrace-min-free.conf", s.value))
	}
	if len(noFailed.zones)+len(noNet.zones) > 0 {
		if sc.WatermarkScaleFactor > 0 && sc.WatermarkScaleFactor < 200 {
			f.Fix = append(f.Fix, "sysctl -w vm.watermark_scale_factor=200   # kswapd wakes with 2% of memory free instead of "+pct(float64(sc.WatermarkScaleFactor), 10000))
		}
		f.Fix = append(f.Fix, "echo 1 > /proc/sys/vm/compact_memory   # compacts once, now")
	}
	return f
}

// failedOrders are the page orders (>= 1) of failures in the log.
func failedOrders(groups []FailureGroup) []int {
	var out []int
	for _, g := range groups {
		if g.Kind == kmsg.KindPage && g.Order >= 1 && !slices.Contains(out, g.Order) {
			out = append(out, g.Order)
		}
	}
	slices.Sort(out)
	return out
}

func blocksAtLeast(z sysstate.ZoneFree, order int) uint64 {
	var n uint64
	for o := order; o < len(z.FreeBlocks); o++ {
		n += z.FreeBlocks[o]
	}
	return n
}

func orderSize(order int, pk uint64) string {
	if order < 0 {
		return "none"
	}
	return fmt.Sprintf("order %d (%s)", order, kb(pk<<order))
}

// zoneOrders collects, per zone, the orders it has no free block of.
type zoneOrders struct {
	zones  []string
	orders map[string][]string
}

func (z *zoneOrders) add(zone string, order int) {
	if z.orders == nil {
		z.orders = map[string][]string{}
	}
	if _, ok := z.orders[zone]; !ok {
		z.zones = append(z.zones, zone)
	}
	z.orders[zone] = append(z.orders[zone], strconv.Itoa(order))
}

// String reads "node 1 Normal (orders 2, 3)".
func (z zoneOrders) String() string {
	parts := make([]string, len(z.zones))
	for i, name := range z.zones {
		o := z.orders[name]
		word := "order"
		if len(o) > 1 {
			word = "orders"
		}
		parts[i] = fmt.Sprintf("%s (%s %s)", name, word, strings.Join(o, ", "))
	}
	return strings.Join(parts, ", ")
}

func appendOnce(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// lowmemKB is the memory min_free_kbytes is computed from: managed pages
// of the zones below HighMem and Movable.
func lowmemKB(zones []sysstate.ZoneFree, pk uint64) uint64 {
	var n uint64
	for _, z := range zones {
		if z.Zone != "HighMem" && z.Zone != "Movable" {
			n += z.Managed * pk
		}
	}
	return n
}

func largestZone(zones []sysstate.ZoneFree) (sysstate.ZoneFree, bool) {
	var best sysstate.ZoneFree
	found := false
	for _, z := range zones {
		if !found || z.Managed > best.Managed {
			best, found = z, true
		}
	}
	return best, found && best.Managed > 0
}

// projected says how a zone's watermarks move with a new min_free_kbytes:
// min scales with it; low and high stay the larger of min/4 and
// watermark_scale_factor's share of the zone above min (the kernel's
// __setup_per_zone_wmarks).
func projected(z sysstate.ZoneFree, sc sysstate.Sysctl, value int64, pk uint64) string {
	newMin := z.MinPages * uint64(value) / uint64(sc.MinFreeKbytes)
	gap := max(newMin/4, z.Managed*uint64(max(sc.WatermarkScaleFactor, 0))/10000)
	return fmt.Sprintf("node %d %s: min %s → %s, low %s → %s, high %s → %s",
		z.Node, z.Zone, kb(z.MinPages*pk), kb(newMin*pk), kb(z.LowPages*pk), kb((newMin+gap)*pk),
		kb(z.HighPages*pk), kb((newMin+2*gap)*pk))
}
