package sysstate

import (
	"bytes"
	"strconv"
	"strings"
)

// vmstatExact and vmstatPrefixes select the /proc/vmstat counters that
// explain allocation failures (direct reclaim, compaction, kswapd) and huge
// page shortfalls (hugetlb buddy allocations, THP fallbacks). The file has
// about 200 counters; keeping the rest would only make every snapshot
// bigger.
var vmstatExact = map[string]bool{
	"nr_free_pages":             true,
	"compact_stall":             true,
	"compact_fail":              true,
	"compact_success":           true,
	"compact_migrate_scanned":   true,
	"compact_free_scanned":      true,
	"compact_isolated":          true,
	"compact_daemon_wake":       true,
	"pgscan_kswapd":             true,
	"pgscan_direct":             true,
	"pgscan_direct_throttle":    true,
	"pageoutrun":                true,
	"pgfree":                    true,
	"thp_fault_fallback":        true,
	"thp_collapse_alloc_failed": true,
	"htlb_buddy_alloc_fail":     true,
	"htlb_buddy_alloc_success":  true,
	"zone_reclaim_success":      true, // zone_reclaim_mode at work
	"zone_reclaim_failed":       true,
	"oom_kill":                  true,
}

var vmstatPrefixes = []string{"allocstall_", "pgsteal_", "kswapd_", "drop_", "pgalloc_"}

// keepVmstat reports whether a counter is one a snapshot carries.
func keepVmstat(name []byte) bool {
	if vmstatExact[string(name)] { // no allocation: the compiler converts in place
		return true
	}
	for _, p := range vmstatPrefixes {
		if len(name) >= len(p) && string(name[:len(p)]) == p {
			return true
		}
	}
	return false
}

// parseVmstat parses /proc/vmstat ("name value" per line) and keeps the
// counters keep selects. Counters it does not know are skipped, since every
// kernel release adds some; a line that is not "name value" is an error.
func parseVmstat(data []byte, keep func([]byte) bool) (map[string]uint64, error) {
	out := make(map[string]uint64, 64)
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data = nextLine(data)
		name, value, ok := splitPair(line)
		if !ok {
			return nil, errAtLine(n, "want \"name value\", got %q", truncate(line))
		}
		if !keep(name) {
			continue
		}
		v, err := strconv.ParseUint(string(value), 10, 64)
		if err != nil {
			return nil, errAtLine(n, "counter %s: %v", name, unwrapNum(err))
		}
		out[string(name)] = v
	}
	return out, nil
}

// splitPair splits "name value" with any run of blanks between; anything
// else (one field, three fields) is not a pair.
// It does not allocate, unlike bytes.Fields.
func splitPair(line []byte) (name, value []byte, ok bool) {
	line = bytes.TrimSpace(line)
	i := bytes.IndexAny(line, " \t")
	if i <= 0 {
		return nil, nil, false
	}
	name, value = line[:i], bytes.TrimLeft(line[i:], " \t")
	if len(value) == 0 || bytes.ContainsAny(value, " \t") {
		return nil, nil, false
	}
	return name, value, true
}

// unwrapNum turns strconv's "strconv.ParseUint: parsing "x": invalid
// syntax" into "invalid number "x"", which reads better after a file name.
func unwrapNum(err error) string {
	if ne, ok := err.(*strconv.NumError); ok {
		if ne.Err == strconv.ErrRange {
			return "value " + strings.TrimSpace(ne.Num) + " is out of range"
		}
		return strconv.Quote(ne.Num) + " is not a number"
	}
	return err.Error()
}
