package sysstate

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/memtrace/memtrace/internal/event"
)

// ZoneReader reads the zones for the verdict on an allocation failure:
// /proc/zoneinfo (0.2 ms on a 2-CPU host) and /proc/buddyinfo (0.06 ms).
// /proc/pagetypeinfo, which splits free blocks by migratetype, takes about
// 13 ms and holds each zone's lock while it walks the free lists, so it is
// not read. A ZoneReader reuses its buffers; it is safe for concurrent use.
type ZoneReader struct {
	procRoot string
	mu       sync.Mutex
	zbuf     []byte
	bbuf     []byte
}

// NewZoneReader reads the zones of the procfs mounted at procRoot.
func NewZoneReader(procRoot string) *ZoneReader { return &ZoneReader{procRoot: procRoot} }

// Read returns every zone of every node, zoneinfo's order, with its free
// blocks from buddyinfo.
func (r *ZoneReader) Read() ([]ZoneInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	zpath := filepath.Join(r.procRoot, "zoneinfo")
	var err error
	if r.zbuf, err = readInto(zpath, r.zbuf); err != nil {
		return nil, fileError(zpath, err)
	}
	bpath := filepath.Join(r.procRoot, "buddyinfo")
	if r.bbuf, err = readInto(bpath, r.bbuf); err != nil {
		return nil, fileError(bpath, err)
	}
	zones, err := ParseZoneinfo(r.zbuf)
	if err != nil {
		return nil, fileError(zpath, err)
	}
	buddy, err := ParseBuddyinfo(r.bbuf)
	if err != nil {
		return nil, fileError(bpath, err)
	}
	if err := mergeBuddy(zones, buddy); err != nil {
		return nil, fileError(bpath, err)
	}
	return zones, nil
}

// Reserve is how far under the min watermark a request may take pages
// (mm/page_alloc.c __zone_watermark_ok, gfp_to_alloc_flags).
type Reserve int

const (
	// ReserveNone: min itself. Every request that cannot use the reserve:
	// those that can sleep, and GFP_NOWAIT and THP faults, which cannot.
	ReserveNone Reserve = iota
	// ReserveHigh: __GFP_HIGH that can sleep: down to half of min.
	ReserveHigh
	// ReserveAtomic: __GFP_HIGH that cannot sleep (GFP_ATOMIC): down to
	// 3/8 of min.
	ReserveAtomic
)

// FailedRequest is what the verdict needs of a failed allocation.
type FailedRequest struct {
	Order int
	// HighestZone is the highest zone the GFP mask allows (gfp_zone):
	// "DMA", "DMA32", "Normal", "HighMem" or "Movable".
	HighestZone string
	Reserve     Reserve
	// Movable requests may also take free CMA pages.
	Movable bool
}

// Classify judges a failed request against zones read after it, the way
// the allocator's slow path does: a zone serves the request when its free
// pages, less what the request may not count, are above the mark (min
// less the request's reserve, plus the zone's protection for the request's
// highest zone) and, for order > 0, it has a free block of that order or
// larger. The ZoneState has no timing: the caller knows when it read.
func Classify(zones []ZoneInfo, req FailedRequest) event.ZoneState {
	var st event.ZoneState
	// The line names the zone that could have served the request, else
	// the preferred one (the first of the zonelist).
	lead, served := 0, false
	for _, z := range eligible(zones, req.HighestZone) {
		a := judge(z, req, protectionIndex(zones, z.Node, req.HighestZone))
		if !served && !a.Below && !a.Fragmented {
			lead, served = len(st.Zones), true
		}
		st.Zones = append(st.Zones, a)
	}
	page := uint64(os.Getpagesize())
	if len(st.Zones) == 0 {
		st.Verdict = event.VerdictNeither
		st.Summary = fmt.Sprintf("no populated zone up to %s could be read", req.HighestZone)
		return st
	}
	a := st.Zones[lead]
	name := a.Zone
	if multiNode(st.Zones) {
		name = fmt.Sprintf("node %d %s", a.Node, a.Zone)
	}
	levels := fmt.Sprintf("%s free %s, min %s", name, size(a.Free*page), size(a.Min*page))
	if req.Reserve != ReserveNone {
		levels += fmt.Sprintf(" (%s may go to %s)", map[Reserve]string{ReserveHigh: "__GFP_HIGH", ReserveAtomic: "GFP_ATOMIC"}[req.Reserve], size(a.Mark*page))
	} else if a.Mark > a.Min {
		levels += fmt.Sprintf(" (%s with protection)", size(a.Mark*page))
	}
	switch {
	case served:
		st.Verdict = event.VerdictNeither
		st.Summary = "neither below the watermark nor fragmented (a cgroup limit, a __GFP_NORETRY/__GFP_NOWARN try, or memory freed since): " + levels
		if req.Order > 0 {
			st.Summary += fmt.Sprintf(", %d free blocks of order ≥ %d", a.BlocksAtLeast, req.Order)
		}
	case a.Below:
		st.Verdict = event.VerdictBelowMin
		st.Summary = "below the min watermark: " + levels
	default:
		st.Verdict = event.VerdictFragmented
		st.Summary = fmt.Sprintf("fragmented: no free block of order ≥ %d in %s (largest order %d); %s", req.Order, name, a.LargestOrder, levels)
	}
	return st
}

// judge applies the watermark check of one zone to req.
func judge(z ZoneInfo, req FailedRequest, protIdx int) event.ZoneAtFailure {
	a := event.ZoneAtFailure{
		Node: z.Node, Zone: z.Zone, Free: z.Free, Min: z.Min, Low: z.Low, High: z.High,
		PCPPages: z.PCPPages, BlocksAtLeast: z.BlocksAtLeast(req.Order), LargestOrder: z.LargestOrder(),
	}
	mark := z.Min
	// __GFP_HIGH order-0 requests ignore the watermark boost
	// (zone_watermark_fast).
	if req.Order == 0 && req.Reserve != ReserveNone && z.Boost <= mark {
		mark -= z.Boost
	}
	switch req.Reserve {
	case ReserveHigh:
		mark -= mark / 2
	case ReserveAtomic:
		mark -= mark / 2
		mark -= mark / 4
	}
	if protIdx >= 0 && protIdx < len(z.Protection) {
		mark += z.Protection[protIdx]
	}
	a.Mark = mark
	unusable := uint64(1)<<min(max(req.Order, 0), 63) - 1
	if !req.Movable {
		unusable += z.FreeCMA
	}
	if z.Free > unusable {
		a.Usable = z.Free - unusable
	}
	a.Below = a.Usable <= mark
	// Without buddyinfo blocks (FreeBlocks empty) fragmentation is unknown.
	a.Fragmented = !a.Below && req.Order > 0 && len(z.FreeBlocks) > 0 && a.BlocksAtLeast == 0
	return a
}

// eligible returns the populated zones of every node a request for
// highest may use, highest first within each node (the zonelist's order;
// the local node is not known here, so nodes come in order).
func eligible(zones []ZoneInfo, highest string) []ZoneInfo {
	var nodes []int
	for _, z := range zones {
		if !slices.Contains(nodes, z.Node) {
			nodes = append(nodes, z.Node)
		}
	}
	slices.Sort(nodes)
	var out []ZoneInfo
	for _, node := range nodes {
		top := protectionIndex(zones, node, highest)
		for i := len(zones) - 1; i >= 0; i-- {
			if z := zones[i]; z.Node == node && z.Managed > 0 && z.Index <= top {
				out = append(out, z)
			}
		}
	}
	return out
}

// protectionIndex is the index, in node's zones, of the highest zone a
// request may use: the zone named so, else Normal (HighMem exists only on
// 32-bit, where gfp_zone maps it to Normal otherwise), else the node's
// highest zone.
func protectionIndex(zones []ZoneInfo, node int, highest string) int {
	for _, name := range []string{highest, "Normal"} {
		for _, z := range zones {
			if z.Node == node && z.Zone == name {
				return z.Index
			}
		}
	}
	best := -1
	for _, z := range zones {
		if z.Node == node {
			best = max(best, z.Index)
		}
	}
	return best
}

func multiNode(zones []event.ZoneAtFailure) bool {
	for _, z := range zones {
		if z.Node != zones[0].Node {
			return true
		}
	}
	return false
}

// size prints bytes the way the kernel log does sizes: 31 MiB, 512 KiB.
func size(b uint64) string {
	switch {
	case b >= 10<<30:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 10<<20:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", b>>10)
	}
}
