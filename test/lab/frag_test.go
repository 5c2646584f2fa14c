package main

import "testing"

// The safety valve opens on direct compaction and direct reclaim stalls,
// in every zone, and on nothing else: compact_fail or pgscan_* move with
// them or without them and must not count twice.
func TestStallsIn(t *testing.T) {
	const vmstat = `nr_free_pages 47000
allocstall_dma 1
allocstall_dma32 2
allocstall_normal 0
allocstall_movable 4
compact_stall 5
compact_fail 5
pgscan_direct 900
`
	if n := stallsIn(vmstat); n != 12 {
		t.Errorf("stalls: %d, want 12", n)
	}
	if n := stallsIn("garbage"); n != 0 {
		t.Errorf("garbage: %d", n)
	}
}
