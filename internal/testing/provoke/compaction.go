package provoke

import (
	"bufio"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	// compactionStep is how many huge pages past the free blocks of
	// their order each round asks for: each one needs a compaction.
	compactionStep = 4
	// compactionKeepShare: while the pool holds the free blocks, at least
	// MemTotal / compactionKeepShare stays available to the rest of the
	// machine (page cache and the free blocks too small for the pool),
	// bounded by compactionKeepMin and compactionKeepMax: a run holds
	// them for seconds, and what the rest of a test machine needs in
	// that time (a few test binaries, a browser) does not grow with its
	// memory.
	compactionKeepShare = 16
	compactionKeepMin   = 128 << 10 // kB
	compactionKeepMax   = 512 << 10 // kB
)

// Compaction makes a child process grow the default huge page pool
// (nr_hugepages) while no free block of the huge page order is left, so
// that every page it adds must be made by direct compaction in the
// child's context: real compaction:mm_compaction_try_to_compact_pages
// events (order 9 on x86-64, __GFP_RETRY_MAYFAIL) with their outcomes.
// Entering the allocator's slow path usually wakes kswapd too, the child
// being the waker, and a compaction that fails is followed by direct
// reclaim; StallReport.Counts has each of these for the child.
//
// The free blocks of the huge page order and above (/proc/buddyinfo) are
// first taken into the pool, which holds them only for the run: what is
// left free is fragmented by the machine's own use. It refuses when that
// would leave less than a sixteenth of MemTotal (128 to 512 MiB)
// available outside the pool (an error wrapping errors.ErrUnsupported:
// too little of the free memory is fragmented to provoke safely). On a
// mostly idle machine nearly all free memory is in such blocks, so the
// pool holds most of the machine's memory for the seconds of a run, as
// NodeReclaim's does. When the child made fewer than want compactions
// (the machine freed new blocks of the order meanwhile, or the kernel
// deferred compaction after failures), the error wraps
// errors.ErrUnsupported too. The pool is put back as it was
// (nr_hugepages; its freed pages return to the free lists), also on
// error, and a run waits for other users of the pool (ReserveHugePages).
func Compaction(want int, opts ...Option) (rep StallReport, err error) {
	cfg := newConfig("mt-compact", 120*time.Second, opts)
	if want < 1 {
		return rep, fmt.Errorf("provoking compaction: want = %d, must be at least 1", want)
	}
	start := time.Now()
	dir, sizeKB, err := hugePool()
	if err != nil {
		return rep, err
	}
	order := bits.Len64(sizeKB*1024/uint64(os.Getpagesize())) - 1
	reservedMu.Lock()
	if reserved[sizeKB] {
		reservedMu.Unlock()
		return rep, fmt.Errorf("provoking compaction: the %d kB pool is reserved by this process", sizeKB)
	}
	reserved[sizeKB] = true
	reservedMu.Unlock()
	defer func() {
		reservedMu.Lock()
		delete(reserved, sizeKB)
		reservedMu.Unlock()
	}()
	unlockFree, err := lockFreeMemory()
	if err != nil {
		return rep, fmt.Errorf("provoking compaction: %w", err)
	}
	defer unlockFree()
	unlock, err := lockPool(sizeKB)
	if err != nil {
		return rep, fmt.Errorf("provoking compaction: %w", err)
	}
	defer unlock()
	p := pool{dir: dir}
	if err := p.read(); err != nil {
		return rep, err
	}
	p.touchedNr = true // the child writes it
	defer func() { err = errors.Join(err, p.restore()) }()

	s, err := newSession(hierarchy{}, cfg, 0, false)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	const try = "compaction:mm_compaction_try_to_compact_pages"
	counters, err := s.counters(try, "vmscan:mm_vmscan_wakeup_kswapd", "vmscan:mm_vmscan_direct_reclaim_begin")
	if err != nil {
		return rep, err
	}
	defer closeCounters(counters)
	avail, err := meminfo("MemAvailable")
	if err != nil {
		return rep, fmt.Errorf("provoking compaction: %w", err)
	}
	total, err := meminfo("MemTotal")
	if err != nil {
		return rep, fmt.Errorf("provoking compaction: %w", err)
	}
	keep := min(max(total/compactionKeepShare, compactionKeepMin), compactionKeepMax)
	limit := (int64(avail) - int64(keep)) / int64(sizeKB)
	nrFile := filepath.Join(dir, "nr_hugepages")
	for round := 0; round < 8; round++ {
		free, err := freeBlocks(order)
		if err != nil {
			return rep, err
		}
		cur, err := readInt(nrFile)
		if err != nil {
			return rep, fmt.Errorf("reading nr_hugepages: %w", err)
		}
		rep.PoolAsked = cur + free + compactionStep
		if rep.PoolAsked-p.nr > limit {
			if round > 0 {
				// Compaction and reclaim freed new blocks meanwhile:
				// what the child made so far is the result.
				break
			}
			return rep, fmt.Errorf("provoking compaction: %w: %d free blocks of order %d or more, taking them would leave less than %d MiB of %d MiB available", errors.ErrUnsupported, free, order, keep>>10, avail>>10)
		}
		if err := s.child.call("setpool", poolArgs{Path: nrFile, N: rep.PoolAsked}, &rep.PoolGot); err != nil {
			return rep, err
		}
		if rep.Counts, err = readCounters(counters); err != nil {
			return rep, err
		}
		if rep.Counts[try] >= uint64(want) {
			break
		}
	}
	rep.Pid, rep.Tids, rep.Comm = s.child.Pid, []int{s.child.Tid}, s.child.Comm
	rep.Syscall = "write(" + nrFile + ")"
	rep.Events = rep.Counts[try]
	rep.Duration = time.Since(start)
	if rep.Events < uint64(want) {
		// The machine's own frees made new blocks of the order faster
		// than the child asked, or compaction was deferred after
		// failures: nothing to compact here now, not a fault.
		return rep, fmt.Errorf("provoking compaction: %w: growing the huge page pool to %d (got %d) gave %d direct compactions, want %d", errors.ErrUnsupported, rep.PoolAsked, rep.PoolGot, rep.Events, want)
	}
	return rep, nil
}

// freeBlocks counts the free blocks of order and above in every zone, in
// blocks of order (/proc/buddyinfo: "Node 0, zone Normal c0 c1 … c10").
func freeBlocks(order int) (int64, error) {
	f, err := os.Open("/proc/buddyinfo")
	if err != nil {
		return 0, fmt.Errorf("reading free blocks: %w", err)
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[2] != "zone" {
			continue
		}
		for o, c := range fields[4:] {
			v, err := strconv.ParseInt(c, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing /proc/buddyinfo line %q: %w", sc.Text(), err)
			}
			if o >= order {
				n += v << (o - order)
			}
		}
	}
	return n, sc.Err()
}
