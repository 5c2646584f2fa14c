package sysstate

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"

	"github.com/prometheus/procfs"
)

// ZoneFree is one memory zone of one NUMA node: its free blocks per order
// from /proc/buddyinfo and its watermarks from /proc/zoneinfo. Watermarks
// and FreePages are in pages.
//
// An order-N allocation needs a free block of order N or more; an atomic
// one (GFP_ATOMIC) cannot wait for compaction to make one, which is how
// "page allocation failure: order:1, mode:0x20" happens with plenty of
// order-0 pages free.
type ZoneFree struct {
	Node       int      `json:"node"`
	Zone       string   `json:"zone"`
	FreeBlocks []uint64 `json:"free_blocks"` // index is the order
	FreePages  uint64   `json:"free_pages"`  // sum of FreeBlocks[o] << o
	MinPages   uint64   `json:"min_pages"`   // WMARK_MIN: below it only atomic/__GFP_HIGH may allocate
	LowPages   uint64   `json:"low_pages"`   // WMARK_LOW: kswapd wakes up
	HighPages  uint64   `json:"high_pages"`  // WMARK_HIGH: kswapd goes back to sleep
	Managed    uint64   `json:"managed_pages"`
}

// MaxFreeOrder is the highest order with at least one free block, or -1
// when the zone has no free page at all. MaxFreeOrder() < 1 means no
// order-1 request can be served from this zone without reclaim or
// compaction.
func (z ZoneFree) MaxFreeOrder() int {
	for o := len(z.FreeBlocks) - 1; o >= 0; o-- {
		if z.FreeBlocks[o] > 0 {
			return o
		}
	}
	return -1
}

// readBuddy reads /proc/buddyinfo with procfs. procfs gives counts as
// float64 and accepts things the kernel never prints (negative, fractional
// or huge counts, node names that are not numbers), so each entry is
// checked here; procfs keeps one entry per line, so entry i is line i+1.
func readBuddy(fs procfs.FS, procRoot string) ([]ZoneFree, error) {
	path := filepath.Join(procRoot, "buddyinfo")
	infos, err := fs.BuddyInfo()
	if err != nil {
		return nil, fileError(path, err)
	}
	if len(infos) == 0 {
		return nil, fileError(path, fmt.Errorf("no zones"))
	}
	zones := make([]ZoneFree, 0, len(infos))
	for i, bi := range infos {
		z, err := zoneFromBuddy(bi)
		if err != nil {
			return nil, fileError(path, errAtLine(i+1, "%v", err))
		}
		zones = append(zones, z)
	}
	return zones, nil
}

// maxExactCount is the largest count a float64 holds exactly.
const maxExactCount = 1 << 53

func zoneFromBuddy(bi procfs.BuddyInfo) (ZoneFree, error) {
	node, err := strconv.Atoi(bi.Node)
	if err != nil || node < 0 {
		return ZoneFree{}, fmt.Errorf("node %q is not a node number", bi.Node)
	}
	if len(bi.Sizes) == 0 {
		return ZoneFree{}, fmt.Errorf("node %d zone %s: no free counts", node, bi.Zone)
	}
	if len(bi.Sizes) > 64 {
		return ZoneFree{}, fmt.Errorf("node %d zone %s: %d orders, more than a page can have", node, bi.Zone, len(bi.Sizes))
	}
	z := ZoneFree{Node: node, Zone: bi.Zone, FreeBlocks: make([]uint64, len(bi.Sizes))}
	for o, f := range bi.Sizes {
		if f < 0 || f != math.Trunc(f) || f > maxExactCount { // NaN fails f == Trunc(f)
			return ZoneFree{}, fmt.Errorf("node %d zone %s: order %d: count %v is not a block count", node, bi.Zone, o, f)
		}
		n := uint64(f)
		z.FreeBlocks[o] = n
		// n < 2^53 but o may be up to 63 in a corrupt file: check the shift.
		if pages := n << o; pages>>o == n && z.FreePages+pages >= z.FreePages {
			z.FreePages += pages
		} else {
			return ZoneFree{}, fmt.Errorf("node %d zone %s: order %d: free pages overflow", node, bi.Zone, o)
		}
	}
	return z, nil
}

// watermarks is what a snapshot keeps from one zoneinfo zone.
type watermarks struct {
	min, low, high, managed uint64
}

type zoneKey struct {
	node int
	zone string
}

// readWatermarks reads /proc/zoneinfo with procfs. procfs never reports a
// parse error here: a missing line leaves its field nil, and (procfs
// v0.23.0) a value that is not a number reads as 0. So a zone without all
// four, or whose watermarks are not in order min <= low <= high as the
// kernel sets them, is an error here rather than a silent zero.
func readWatermarks(fs procfs.FS, procRoot string) (map[zoneKey]watermarks, error) {
	path := filepath.Join(procRoot, "zoneinfo")
	zi, err := fs.Zoneinfo()
	if err != nil {
		return nil, fileError(path, err)
	}
	out := make(map[zoneKey]watermarks, len(zi))
	for _, z := range zi {
		node, err := strconv.Atoi(z.Node)
		if err != nil || z.Zone == "" {
			return nil, fileError(path, fmt.Errorf("zone without a \"Node N, zone NAME\" header"))
		}
		var w watermarks
		for _, f := range []struct {
			name string
			src  *int64
			dst  *uint64
		}{
			{"min", z.Min, &w.min},
			{"low", z.Low, &w.low},
			{"high", z.High, &w.high},
			{"managed", z.Managed, &w.managed},
		} {
			if f.src == nil || *f.src < 0 {
				return nil, fileError(path, fmt.Errorf("node %d zone %s: missing or malformed %q", node, z.Zone, f.name))
			}
			*f.dst = uint64(*f.src)
		}
		if w.min > w.low || w.low > w.high {
			return nil, fileError(path, fmt.Errorf("node %d zone %s: watermarks min %d, low %d, high %d are out of order (malformed number?)",
				node, z.Zone, w.min, w.low, w.high))
		}
		out[zoneKey{node, z.Zone}] = w
	}
	return out, nil
}

// applyWatermarks copies watermarks into the buddyinfo zones. A zone that
// buddyinfo lists and zoneinfo does not is an error: the two files come
// from the same kernel walk and must agree.
func applyWatermarks(zones []ZoneFree, wm map[zoneKey]watermarks, procRoot string) error {
	for i := range zones {
		w, ok := wm[zoneKey{zones[i].Node, zones[i].Zone}]
		if !ok {
			return fileError(filepath.Join(procRoot, "zoneinfo"),
				fmt.Errorf("node %d zone %s is in buddyinfo but not here", zones[i].Node, zones[i].Zone))
		}
		zones[i].MinPages, zones[i].LowPages, zones[i].HighPages, zones[i].Managed = w.min, w.low, w.high, w.managed
	}
	return nil
}
