package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/host/sysstate"
)

const (
	// nodeReclaimFill is the most free memory a run fills with page cache
	// itself; more free memory is taken by the huge page pool first.
	nodeReclaimFill = 1 << 30
	// nodeReclaimMaxFill is the most left free after the pool took its
	// part: the file read is that plus nodeReclaimMargin.
	nodeReclaimMaxFill = 3 << 30
	// nodeReclaimHeadroom is the free memory left above the low
	// watermark when the pool takes the rest.
	nodeReclaimHeadroom = 256 << 20
	// nodeReclaimMargin is read beyond the free memory above the low
	// watermark, so the zone does reach it.
	nodeReclaimMargin = 512 << 20
	// nodeReclaimKeep is the MemAvailable the pool must leave to the
	// rest of the host.
	nodeReclaimKeep     = 2 << 30
	zoneReclaimModePath = "/proc/sys/vm/zone_reclaim_mode"
)

// NodeReclaim makes a child's worker thread reclaim its node
// (vm.zone_reclaim_mode): with the mode 1, an allocation that finds a
// zone under its low watermark reclaims the node's unmapped page cache
// itself (node_reclaim(), mm_vmscan_node_reclaim_begin/_end) before it
// tries another zone or wakes kswapd. The local node qualifies, so one
// node is enough; a host with several is refused (errors.ErrUnsupported:
// the child would have to be bound to a node).
//
// The free memory of the node's highest zone (Normal), where page cache
// goes first, must come down to its low watermark: the child reads a cold
// file as large as the free memory above it plus 512 MiB.
// When more than 1 GiB is free, the default huge page pool first takes
// all but 256 MiB of it, as much as the kernel gives (GrowHugePages: under
// the pool lock, restored after), as long as 2 GiB of MemAvailable are
// left; when that is not possible, or more than 3 GiB are still free
// after (in blocks too small for huge pages), the error wraps
// errors.ErrUnsupported. The mode is set to 1 for the read only
// (other tasks allocating meanwhile may node-reclaim too) and put back,
// then the pool, then the file is removed. The whole run holds the lock
// Compaction holds too (lockFreeMemory): the free memory it measures must
// still be free when it reads.
func NodeReclaim(opts ...Option) (rep StallReport, err error) {
	cfg := newConfig("mt-nodereclm", 120*time.Second, opts)
	start := time.Now()
	nodes, err := memoryNodes()
	if err != nil {
		return rep, err
	}
	if len(nodes) != 1 {
		return rep, fmt.Errorf("provoking node reclaim: %w: %d nodes with memory (%s); the reader would have to be bound to one", errors.ErrUnsupported, len(nodes), strings.Join(nodes, ","))
	}
	unlock, err := lockFreeMemory()
	if err != nil {
		return rep, fmt.Errorf("provoking node reclaim: %w", err)
	}
	defer unlock()
	gap, err := freeAboveLow()
	if err != nil {
		return rep, err
	}
	if gap > nodeReclaimFill {
		size, err := meminfo("Hugepagesize")
		if err != nil {
			return rep, fmt.Errorf("provoking node reclaim: %w", err)
		}
		avail, err := meminfo("MemAvailable")
		if err != nil {
			return rep, fmt.Errorf("provoking node reclaim: %w", err)
		}
		take := (gap - nodeReclaimHeadroom) / int64(size<<10)
		if int64(avail<<10)-take*int64(size<<10) < nodeReclaimKeep {
			return rep, fmt.Errorf("provoking node reclaim: %w: %d MiB free above the low watermark, and holding all but %d MiB of it in huge pages would leave less than %d MiB available",
				errors.ErrUnsupported, gap>>20, nodeReclaimHeadroom>>20, nodeReclaimKeep>>20)
		}
		restore, _, err := GrowHugePages(size, int(take))
		if err != nil {
			return rep, fmt.Errorf("provoking node reclaim: taking free memory into the huge page pool: %w", err)
		}
		defer func() { err = errors.Join(err, restore()) }()
		// Growing the pool reclaims page cache (its requests retry, and
		// wake kswapd): take what that freed too, a few times at most.
		nr := filepath.Join(hugepagesDir, fmt.Sprintf("hugepages-%dkB", size), "nr_hugepages")
		for range 4 {
			if gap, err = freeAboveLow(); err != nil || gap <= nodeReclaimFill {
				break
			}
			cur, err := readInt(nr)
			if err != nil {
				return rep, fmt.Errorf("provoking node reclaim: %w", err)
			}
			more := (gap - nodeReclaimHeadroom) / int64(size<<10)
			if avail, err := meminfo("MemAvailable"); err != nil || int64(avail<<10)-more*int64(size<<10) < nodeReclaimKeep {
				break
			}
			if err := writeFile(nr, strconv.FormatInt(cur+more, 10)); err != nil {
				return rep, fmt.Errorf("provoking node reclaim: growing the huge page pool: %w", err)
			}
		}
	}
	// What the pool could not take (free blocks smaller than a huge
	// page) page cache fills, up to nodeReclaimMaxFill. Writing the file
	// charges page cache too; it is dropped after, and the free memory
	// read again.
	if gap > nodeReclaimMaxFill {
		return rep, fmt.Errorf("provoking node reclaim: %w: %d MiB still free above the low watermark after the huge page pool took what the kernel gave", errors.ErrUnsupported, gap>>20)
	}
	path, err := writeColdFile(int(gap + nodeReclaimMargin))
	if err != nil {
		return rep, err
	}
	defer os.Remove(path)
	if gap, err = freeAboveLow(); err != nil {
		return rep, err
	}
	s, err := newSession(hierarchy{}, cfg, 0, false)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	counters, err := s.counters("vmscan:mm_vmscan_node_reclaim_begin", "vmscan:mm_vmscan_node_reclaim_end")
	if err != nil {
		return rep, err
	}
	defer closeCounters(counters)
	restoreMode, err := setZoneReclaimMode(1)
	if err != nil {
		return rep, err
	}
	var res readResult
	err = s.child.call("readfile", readArgs{Path: path}, &res)
	if rerr := restoreMode(); err == nil {
		err = rerr
	}
	if err != nil {
		return rep, err
	}
	rep.Syscall = fmt.Sprintf("read(%d MiB file) with vm.zone_reclaim_mode 1, %d MiB free above the low watermark before", res.Bytes>>20, gap>>20)
	rep.Bytes = uint64(res.Bytes)
	if rep.Counts, err = readCounters(counters); err != nil {
		return rep, err
	}
	rep.Pid, rep.Tids, rep.Comm = s.child.Pid, []int{s.child.Tid}, s.child.Comm
	rep.Events = rep.Counts["vmscan:mm_vmscan_node_reclaim_begin"]
	rep.Duration = time.Since(start)
	if rep.Events == 0 {
		after, _ := freeAboveLow()
		return rep, fmt.Errorf("provoking node reclaim: reading %d MiB with %d MiB free above the low watermark gave no mm_vmscan_node_reclaim_begin (%d MiB free above it after)", res.Bytes>>20, gap>>20, after>>20)
	}
	return rep, nil
}

// memoryNodes lists the NUMA nodes with memory ("0", "1").
func memoryNodes() ([]string, error) {
	b, err := os.ReadFile("/sys/devices/system/node/has_memory")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("provoking node reclaim: %w: the kernel has no NUMA nodes (CONFIG_NUMA off: no node reclaim)", errors.ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("provoking node reclaim: reading nodes: %w", err)
	}
	var out []string
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, ok := strings.Cut(part, "-")
		if !ok {
			out = append(out, lo)
			continue
		}
		a, err1 := strconv.Atoi(lo)
		z, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("provoking node reclaim: node list %q", b)
		}
		for n := a; n <= z; n++ {
			out = append(out, strconv.Itoa(n))
		}
	}
	return out, nil
}

// freeAboveLow is the free memory above the low watermark of the node's
// highest populated zone, in bytes: page cache is allocated there first,
// and once that zone is under its low watermark an allocation
// node-reclaims before it tries a lower zone.
func freeAboveLow() (int64, error) {
	zones, err := sysstate.NewZoneReader("/proc").Read()
	if err != nil {
		return 0, fmt.Errorf("provoking node reclaim: %w", err)
	}
	var top *sysstate.ZoneInfo
	for i, z := range zones {
		if z.Managed > 0 && (top == nil || z.Index > top.Index) {
			top = &zones[i]
		}
	}
	if top == nil || top.Free <= top.Low {
		return 0, nil
	}
	return int64(top.Free-top.Low) * int64(os.Getpagesize()), nil
}

// setZoneReclaimMode writes vm.zone_reclaim_mode and returns what puts
// the old value back. Runs in other processes wait (a lock file): two
// interleaved runs would put back each other's 1.
func setZoneReclaimMode(mode int) (restore func() error, err error) {
	unlock, err := lockZoneReclaimMode()
	if err != nil {
		return nil, fmt.Errorf("setting vm.zone_reclaim_mode: %w", err)
	}
	old, err := readInt(zoneReclaimModePath)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("reading vm.zone_reclaim_mode: %w", err)
	}
	if err := writeFile(zoneReclaimModePath, strconv.Itoa(mode)); err != nil {
		unlock()
		return nil, fmt.Errorf("setting vm.zone_reclaim_mode to %d: %w", mode, err)
	}
	return func() error {
		defer unlock()
		if err := writeFile(zoneReclaimModePath, strconv.FormatInt(old, 10)); err != nil {
			return fmt.Errorf("restoring vm.zone_reclaim_mode to %d: %w", old, err)
		}
		return nil
	}, nil
}
