package kmsg

import (
	"math/bits"
	"strconv"
	"strings"
)

// ZoneState is a zone as the kernel described it in the Mem-Info block
// after a failure: its free memory and watermarks ("Node 0 Normal
// free:…kB min:…kB low:…kB high:…kB …") and its free blocks per order
// ("Node 0 Normal: 4908*4kB (UME) 6596*8kB … = 1318800kB"). It shows
// whether the zone was short of memory (free below min) or only of
// contiguous blocks (free above min, no block of the failing order).
type ZoneState struct {
	Node          int      `json:"node"`
	Zone          string   `json:"zone"`
	HasWatermarks bool     `json:"has_watermarks"`
	FreeKB        uint64   `json:"free_kb"`
	MinKB         uint64   `json:"min_kb"`
	LowKB         uint64   `json:"low_kb"`
	HighKB        uint64   `json:"high_kb"`
	HasBlocks     bool     `json:"has_blocks"`
	PageKB        uint64   `json:"page_kb,omitempty"`
	Blocks        []uint64 `json:"free_blocks,omitempty"` // index is the order
}

// BlocksAtLeast is the number of free blocks of order or more; false when
// the log did not list the zone's blocks.
func (z ZoneState) BlocksAtLeast(order int) (uint64, bool) {
	if !z.HasBlocks || order < 0 {
		return 0, false
	}
	var n uint64
	for o := order; o < len(z.Blocks); o++ {
		n += z.Blocks[o]
	}
	return n, true
}

// BelowMin reports whether free memory was at or under the min watermark.
func (z ZoneState) BelowMin() bool { return z.HasWatermarks && z.FreeKB <= z.MinKB }

var (
	zoneFreeRE  = lazyRegexp(`^Node (\d{1,5}) (\w{1,16}) free:(\d{1,20})kB (?:boost:\d+kB )?min:(\d{1,20})kB low:(\d{1,20})kB high:(\d{1,20})kB`)
	zoneBuddyRE = lazyRegexp(`^Node (\d{1,5}) (\w{1,16}): (.*?)\s*=\s*\d{1,20}kB\s*$`)
	blockRE     = lazyRegexp(`^(\d{1,20})\*(\d{1,20})kB$`)
	migrateRE   = lazyRegexp(`^\([A-Z]{1,8}\)$`)
)

// zoneLine parses one of the two zone lines of a Mem-Info block into z
// (found by node and zone in zones); it returns the updated slice.
func zoneLine(text string, zones []ZoneState) ([]ZoneState, bool) {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "Node ") {
		return zones, false
	}
	if m := zoneFreeRE().FindStringSubmatch(t); m != nil {
		var v [4]uint64
		for i := range v {
			n, err := strconv.ParseUint(m[3+i], 10, 64)
			if err != nil {
				return zones, false
			}
			v[i] = n
		}
		zones, z := zoneFor(zones, m[1], m[2])
		if z == nil {
			return zones, false
		}
		z.HasWatermarks = true
		z.FreeKB, z.MinKB, z.LowKB, z.HighKB = v[0], v[1], v[2], v[3]
		return zones, true
	}
	if m := zoneBuddyRE().FindStringSubmatch(t); m != nil {
		blocks, pageKB, ok := parseBlocks(m[3])
		if !ok {
			return zones, false
		}
		zones, z := zoneFor(zones, m[1], m[2])
		if z == nil {
			return zones, false
		}
		z.HasBlocks, z.Blocks, z.PageKB = true, blocks, pageKB
		return zones, true
	}
	return zones, false
}

// maxZones bounds the zones kept per failure (a corrupt log could name
// many).
const maxZones = 64

func zoneFor(zones []ZoneState, nodeStr, name string) ([]ZoneState, *ZoneState) {
	node, err := strconv.Atoi(nodeStr)
	if err != nil {
		return zones, nil
	}
	for i := range zones {
		if zones[i].Node == node && zones[i].Zone == name {
			return zones, &zones[i]
		}
	}
	if len(zones) >= maxZones {
		return zones, nil
	}
	zones = append(zones, ZoneState{Node: node, Zone: name})
	return zones, &zones[len(zones)-1]
}

// parseBlocks reads "4908*4kB (UME) 6596*8kB (UME) …": counts of blocks
// of doubling sizes, the first being one page. The migrate types in
// parentheses (4.x+) are skipped.
func parseBlocks(s string) ([]uint64, uint64, bool) {
	var blocks []uint64
	var pageKB uint64
	for _, f := range strings.Fields(s) {
		if migrateRE().MatchString(f) {
			continue
		}
		m := blockRE().FindStringSubmatch(f)
		if m == nil {
			return nil, 0, false
		}
		n, err1 := strconv.ParseUint(m[1], 10, 64)
		size, err2 := strconv.ParseUint(m[2], 10, 64)
		if err1 != nil || err2 != nil || size == 0 || len(blocks) >= 64 {
			return nil, 0, false
		}
		if pageKB == 0 {
			if bits.OnesCount64(size) != 1 {
				return nil, 0, false
			}
			pageKB = size
		}
		if size != pageKB<<len(blocks) || size>>len(blocks) != pageKB {
			return nil, 0, false // not the next order
		}
		blocks = append(blocks, n)
	}
	return blocks, pageKB, len(blocks) > 0
}
