package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMemcgReclaim: the reader's memcg reclaim is seen by an outside
// counter on its comm, begins and ends pair up, and the file and cgroup
// are gone afterwards (TestMain checks the cgroup).
func TestMemcgReclaim(t *testing.T) {
	requireRoot(t, "creates a memory cgroup")
	comm := testComm("mr")
	c := counter(t, "vmscan", "mm_vmscan_memcg_reclaim_begin", `comm == "`+comm+`"`)
	rep, err := MemcgReclaim(WithComm(comm))
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	begins, ends := rep.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"], rep.Counts["vmscan:mm_vmscan_memcg_reclaim_end"]
	if begins == 0 || begins != ends || count(t, c) != begins || rep.Bytes != memcgReclaimFile {
		t.Errorf("begin %d, end %d, outside counter %d, read %d bytes", begins, ends, count(t, c), rep.Bytes)
	}
	checkAttribution(t, rep.Report, hits(t, c))
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("memtrace-provoke-%d-*.dat", os.Getpid())))
	if len(left) > 0 {
		t.Errorf("files left: %v", left)
	}
}

// TestCompaction: growing the pool past the free blocks of its order makes
// the child compact, an outside counter on its comm agrees, and the pool
// is exactly as it was afterwards.
func TestCompaction(t *testing.T) {
	requireRoot(t, "grows the huge page pool")
	_, size, err := hugePool()
	if err != nil {
		t.Skip(err)
	}
	before := poolAtRest(t, size)
	comm := testComm("cp")
	c := counter(t, "compaction", "mm_compaction_try_to_compact_pages", `comm == "`+comm+`"`)
	rep, err := Compaction(2, WithComm(comm))
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events < 2 || count(t, c) != rep.Events {
		t.Errorf("compactions: report %d, outside counter %d", rep.Events, count(t, c))
	}
	checkAttribution(t, rep.Report, hits(t, c))
	if after := poolAtRest(t, size); after != before {
		t.Errorf("nr_hugepages %d after, %d before", after, before)
	}
	if rep.PoolGot <= before {
		t.Errorf("the pool did not grow: %d", rep.PoolGot)
	}
}

// TestNodeReclaim: with vm.zone_reclaim_mode 1 and the node's top zone at
// its low watermark, the reader node-reclaims; an outside counter on its
// comm agrees, and the mode, the pool and the file are as they were after.
func TestNodeReclaim(t *testing.T) {
	requireRoot(t, "sets vm.zone_reclaim_mode and grows the huge page pool")
	_, size, err := hugePool()
	if err != nil {
		t.Skip(err)
	}
	pool := poolAtRest(t, size)
	mode := zoneReclaimModeAtRest(t)
	comm := testComm("nr")
	c := counter(t, "vmscan", "mm_vmscan_node_reclaim_begin", `comm == "`+comm+`"`)
	rep, err := NodeReclaim(WithComm(comm))
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	begins, ends := rep.Counts["vmscan:mm_vmscan_node_reclaim_begin"], rep.Counts["vmscan:mm_vmscan_node_reclaim_end"]
	if begins == 0 || begins != ends || count(t, c) != begins {
		t.Errorf("begin %d, end %d, outside counter %d", begins, ends, count(t, c))
	}
	checkAttribution(t, rep.Report, hits(t, c))
	if after := poolAtRest(t, size); after != pool {
		t.Errorf("nr_hugepages %d after, %d before", after, pool)
	}
	if after := zoneReclaimModeAtRest(t); after != mode {
		t.Errorf("zone_reclaim_mode %d after, %d before", after, mode)
	}
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("memtrace-provoke-%d-*.dat", os.Getpid())))
	if len(left) > 0 {
		t.Errorf("files left: %v", left)
	}
}

// zoneReclaimModeAtRest reads vm.zone_reclaim_mode under the lock every
// change to it holds, as poolAtRest does for a pool: cmd/memtrace's doctor
// test provokes node reclaim in a test binary running beside this one.
func zoneReclaimModeAtRest(t *testing.T) int64 {
	t.Helper()
	unlock, err := lockZoneReclaimMode()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	mode, err := readInt(zoneReclaimModePath)
	if err != nil {
		t.Fatal(err)
	}
	return mode
}
