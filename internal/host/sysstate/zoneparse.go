package sysstate

import (
	"bytes"
	"fmt"
	"strconv"
)

// ZoneInfo is one zone of /proc/zoneinfo with its free blocks from
// /proc/buddyinfo: what the allocator compares when it decides whether a
// request may take pages from the zone (__zone_watermark_ok). Counts are
// in pages.
//
// The parsers here are memtrace's own rather than procfs's: they run as
// soon as an allocation failure arrives, so they read only the lines the
// verdict needs, without a regular expression per line (procfs), in about
// the time the kernel takes to print the files.
type ZoneInfo struct {
	Node int    `json:"node"`
	Zone string `json:"zone"`
	// Index is the zone's position in its node (enum zone_type: DMA 0,
	// DMA32 1, Normal 2, Movable 3 on x86-64), which indexes Protection.
	Index int    `json:"index"`
	Free  uint64 `json:"free_pages"`
	// Min, Low and High include the watermark boost, as the allocator
	// compares them; Boost is that boost (0 where zoneinfo does not print
	// it, before 6.1).
	Min     uint64 `json:"min_pages"`
	Low     uint64 `json:"low_pages"`
	High    uint64 `json:"high_pages"`
	Boost   uint64 `json:"boost_pages"`
	Managed uint64 `json:"managed_pages"`
	// Protection is lowmem_reserve: the pages kept free in this zone from
	// requests whose highest usable zone has that index.
	Protection []uint64 `json:"protection"`
	FreeCMA    uint64   `json:"free_cma_pages"`
	// PCPPages are free pages held on the per-CPU lists: not in Free,
	// served to order-0 requests (and small orders since 5.13) of the CPU
	// that holds them.
	PCPPages uint64 `json:"pcp_pages"`
	// FreeBlocks counts free blocks per order (index), all migratetypes.
	FreeBlocks []uint64 `json:"free_blocks"`
}

// LargestOrder is the highest order with a free block, -1 when none.
func (z ZoneInfo) LargestOrder() int {
	for o := len(z.FreeBlocks) - 1; o >= 0; o-- {
		if z.FreeBlocks[o] > 0 {
			return o
		}
	}
	return -1
}

// BlocksAtLeast counts free blocks of order or more.
func (z ZoneInfo) BlocksAtLeast(order int) uint64 {
	var n uint64
	for o := max(order, 0); o < len(z.FreeBlocks); o++ {
		n += z.FreeBlocks[o]
	}
	return n
}

// maxZoneinfoZones bounds what a corrupt file can make the parser keep.
const maxZoneinfoZones = 1024

// ParseZoneinfo reads the zones of /proc/zoneinfo. It needs each zone's
// header, "pages free", min, low, high and managed; boost, protection,
// nr_free_cma and the per-CPU counts are read where the kernel prints
// them. Everything else is skipped.
func ParseZoneinfo(data []byte) ([]ZoneInfo, error) {
	var zones []ZoneInfo
	var have map[string]bool
	check := func() error {
		if len(zones) == 0 {
			return nil
		}
		z := &zones[len(zones)-1]
		for _, f := range []string{"pages free", "min", "low", "high", "managed"} {
			if !have[f] {
				return fmt.Errorf("node %d zone %s: no %q line", z.Node, z.Zone, f)
			}
		}
		if z.Min > z.Low || z.Low > z.High {
			return fmt.Errorf("node %d zone %s: watermarks min %d, low %d, high %d are out of order", z.Node, z.Zone, z.Min, z.Low, z.High)
		}
		return nil
	}
	inPagesets := false
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		if rest, ok := bytes.CutPrefix(line, []byte("Node ")); ok {
			if err := check(); err != nil {
				return nil, errAtLine(n, "%v", err)
			}
			z, err := parseZoneHeader(rest)
			if err != nil {
				return nil, errAtLine(n, "%v", err)
			}
			if len(zones) > 0 && zones[len(zones)-1].Node == z.Node {
				z.Index = zones[len(zones)-1].Index + 1
			}
			if len(zones) == maxZoneinfoZones {
				return nil, errAtLine(n, "more than %d zones", maxZoneinfoZones)
			}
			zones = append(zones, z)
			have = map[string]bool{}
			inPagesets = false
			continue
		}
		if len(zones) == 0 {
			continue // "per-node stats" may come first; nothing before a header counts
		}
		z := &zones[len(zones)-1]
		key, val := splitZoneLine(line)
		if key == "pagesets" {
			inPagesets = true
			continue
		}
		var dst *uint64
		switch key {
		case "pages free":
			dst = &z.Free
		case "min":
			dst = &z.Min
		case "low":
			dst = &z.Low
		case "high":
			if inPagesets { // the per-CPU list's own "high:" limit
				continue
			}
			dst = &z.High
		case "boost":
			dst = &z.Boost
		case "managed":
			dst = &z.Managed
		case "nr_free_cma":
			dst = &z.FreeCMA
		case "count":
			if !inPagesets {
				continue
			}
			v, err := parseCount(val)
			if err != nil {
				return nil, errAtLine(n, "node %d zone %s: pageset count: %v", z.Node, z.Zone, err)
			}
			if z.PCPPages+v < z.PCPPages {
				return nil, errAtLine(n, "node %d zone %s: per-CPU page counts overflow", z.Node, z.Zone)
			}
			z.PCPPages += v
			continue
		case "protection":
			p, err := parseProtection(val)
			if err != nil {
				return nil, errAtLine(n, "node %d zone %s: %v", z.Node, z.Zone, err)
			}
			z.Protection = p
			continue
		default:
			continue
		}
		if have[key] {
			continue // a per-node stat of the same name: the zone's comes first
		}
		v, err := parseCount(val)
		if err != nil {
			return nil, errAtLine(n, "node %d zone %s: %s: %v", z.Node, z.Zone, key, err)
		}
		*dst, have[key] = v, true
	}
	if err := check(); err != nil {
		return nil, err
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("no zones")
	}
	return zones, nil
}

// parseZoneHeader reads "0, zone   Normal" (after "Node ").
func parseZoneHeader(rest []byte) (ZoneInfo, error) {
	num, name, ok := bytes.Cut(rest, []byte(","))
	node, err := strconv.Atoi(string(num))
	if !ok || err != nil || node < 0 {
		return ZoneInfo{}, fmt.Errorf("zone header %q: want \"Node N, zone NAME\"", truncate(rest))
	}
	f := bytes.Fields(name)
	if len(f) != 2 || string(f[0]) != "zone" {
		return ZoneInfo{}, fmt.Errorf("zone header %q: want \"Node N, zone NAME\"", truncate(rest))
	}
	return ZoneInfo{Node: node, Zone: string(f[1])}, nil
}

// splitZoneLine splits "        min      48" into ("min", "48"), and the
// colon forms "count:    0" and "protection: (0, 1)" likewise. "pages
// free" is the one key of two words.
func splitZoneLine(line []byte) (string, []byte) {
	line = bytes.TrimSpace(line)
	if rest, ok := bytes.CutPrefix(line, []byte("pages free")); ok {
		return "pages free", rest
	}
	i := bytes.IndexAny(line, " \t:")
	if i < 0 {
		return string(line), nil
	}
	return string(line[:i]), bytes.TrimLeft(line[i:], " \t:")
}

func parseCount(b []byte) (uint64, error) {
	s := bytes.TrimSpace(b)
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a page count", truncate(s))
	}
	return v, nil
}

// parseProtection reads "(0, 3019, 5195, 5195, 5195)".
func parseProtection(b []byte) ([]uint64, error) {
	s := bytes.TrimSpace(b)
	inner, ok := bytes.CutPrefix(s, []byte("("))
	if inner, ok = bytes.CutSuffix(inner, []byte(")")); !ok {
		return nil, fmt.Errorf("protection %q: want (N, N, ...)", truncate(s))
	}
	parts := bytes.Split(inner, []byte(","))
	if len(parts) > 64 {
		return nil, fmt.Errorf("protection: %d entries, more zones than a node has", len(parts))
	}
	out := make([]uint64, 0, len(parts))
	for _, p := range parts {
		v, err := parseCount(p)
		if err != nil {
			return nil, fmt.Errorf("protection: %v", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// ParseBuddyinfo reads /proc/buddyinfo: per zone, free blocks per order.
// The zones come back in file order, with Node and Zone set.
func ParseBuddyinfo(data []byte) ([]ZoneInfo, error) {
	var zones []ZoneInfo
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte("Node "))
		if !ok {
			return nil, errAtLine(n, "%q: want \"Node N, zone NAME counts...\"", truncate(line))
		}
		num, after, ok := bytes.Cut(rest, []byte(","))
		node, err := strconv.Atoi(string(num))
		f := bytes.Fields(after)
		if !ok || err != nil || node < 0 || len(f) < 3 || string(f[0]) != "zone" {
			return nil, errAtLine(n, "%q: want \"Node N, zone NAME counts...\"", truncate(line))
		}
		counts := f[2:]
		if len(counts) > 64 {
			return nil, errAtLine(n, "node %d zone %s: %d orders, more than a page can have", node, f[1], len(counts))
		}
		z := ZoneInfo{Node: node, Zone: string(f[1]), FreeBlocks: make([]uint64, len(counts))}
		for o, c := range counts {
			if z.FreeBlocks[o], err = parseCount(c); err != nil {
				return nil, errAtLine(n, "node %d zone %s: order %d: %v", node, z.Zone, o, err)
			}
		}
		if len(zones) == maxZoneinfoZones {
			return nil, errAtLine(n, "more than %d zones", maxZoneinfoZones)
		}
		zones = append(zones, z)
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("no zones")
	}
	return zones, nil
}

// mergeBuddy copies each buddyinfo zone's free blocks into the zoneinfo
// zone of the same node and name. buddyinfo lists only populated zones;
// one that zoneinfo lacks means the two files disagree.
func mergeBuddy(zones, buddy []ZoneInfo) error {
	for _, b := range buddy {
		found := false
		for i := range zones {
			if zones[i].Node == b.Node && zones[i].Zone == b.Zone {
				zones[i].FreeBlocks, found = b.FreeBlocks, true
				break
			}
		}
		if !found {
			return fmt.Errorf("node %d zone %s is in buddyinfo but not in zoneinfo", b.Node, b.Zone)
		}
	}
	return nil
}
