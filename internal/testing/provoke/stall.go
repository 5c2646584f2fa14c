package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/probe/tracefs"
)

// StallReport is a Report with independent tracefs counts, for the
// child's worker thread, of the stall events a provoking run caused, by
// "system:event" (e.g. "vmscan:mm_vmscan_memcg_reclaim_begin").
type StallReport struct {
	Report
	Counts map[string]uint64
	// Pool is the huge page pool the child asked for and the one it got,
	// in its last write (Compaction).
	PoolAsked, PoolGot int64
}

const (
	memcgReclaimLimit = 16 << 20
	memcgReclaimFile  = 64 << 20
)

// MemcgReclaim makes a child process read a file four times larger than
// the limit of the memory cgroup it reads in (16 MiB), so its page cache
// charges reclaim the cgroup again and again: real
// vmscan:mm_vmscan_memcg_reclaim_begin/_end pairs on the child's worker
// thread. The file is written beforehand on a disk file system (not
// tmpfs: its pages could not be reclaimed), dropped from the page cache,
// and removed afterwards with the cgroup. Without a disk file system for
// it the error wraps errors.ErrUnsupported.
func MemcgReclaim(opts ...Option) (rep StallReport, err error) {
	cfg := newConfig("mt-memcgrecl", 60*time.Second, opts)
	start := time.Now()
	h, err := memoryHierarchy()
	if err != nil {
		return rep, err
	}
	path, err := writeColdFile(memcgReclaimFile)
	if err != nil {
		return rep, err
	}
	defer os.Remove(path)
	s, err := newSession(h, cfg, memcgReclaimLimit, false)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	counters, err := s.counters("vmscan:mm_vmscan_memcg_reclaim_begin", "vmscan:mm_vmscan_memcg_reclaim_end")
	if err != nil {
		return rep, err
	}
	defer closeCounters(counters)
	// The whole child joins, also on v1: page cache is charged to the
	// memory cgroup of the mm's owner (the main thread), not of the
	// reading thread.
	args := readArgs{Path: path}
	if args.Join, err = s.cg.joinFile(args.Thread); err != nil {
		return rep, err
	}
	if args.Home, err = s.cg.homeFile(s.child.Pid, s.child.Tid, args.Thread); err != nil {
		return rep, err
	}
	var res readResult
	if err := s.child.call("readfile", args, &res); err != nil {
		return rep, err
	}
	rep.Syscall = fmt.Sprintf("read(%d MiB file) in a %d MiB memory cgroup", memcgReclaimFile>>20, memcgReclaimLimit>>20)
	rep.Bytes = uint64(res.Bytes)
	if rep.Counts, err = readCounters(counters); err != nil {
		return rep, err
	}
	rep.Pid, rep.Tids, rep.Comm = s.child.Pid, []int{s.child.Tid}, s.child.Comm
	rep.Events = rep.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"]
	rep.Duration = time.Since(start)
	if rep.Events == 0 {
		return rep, fmt.Errorf("provoking memcg reclaim: reading %d MiB in a %d MiB cgroup gave no mm_vmscan_memcg_reclaim_begin", res.Bytes>>20, memcgReclaimLimit>>20)
	}
	return rep, nil
}

// writeColdFile writes a file of size bytes in a temporary directory of a
// disk file system and drops it from the page cache, so reading it
// allocates (and charges) every page again.
func writeColdFile(size int) (string, error) {
	var dir string
	for _, d := range []string{os.TempDir(), "/var/tmp"} {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC {
			dir = d
			break
		}
	}
	if dir == "" {
		return "", fmt.Errorf("writing a file to read: %w: no temporary directory on a disk file system (TMPDIR and /var/tmp are in memory, their pages cannot be reclaimed)", errors.ErrUnsupported)
	}
	// Named for this process: test binaries run side by side, each
	// checking that it left no file of its own.
	f, err := os.CreateTemp(dir, fmt.Sprintf("memtrace-provoke-%d-*.dat", os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("writing a file to read: %w", err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n := 0; n < size && err == nil; n += len(buf) {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing a file to read: %w", err)
	}
	return f.Name(), nil
}

// counters counts each "system:event" for the child's worker thread.
func (s *session) counters(events ...string) (map[string]*tracefs.Counter, error) {
	out := map[string]*tracefs.Counter{}
	for _, ev := range events {
		system, name, _ := strings.Cut(ev, ":")
		c, err := tracefs.NewCounter(s.tfsDir, system, name, fmt.Sprintf("common_pid == %d", s.child.Tid))
		if err != nil {
			closeCounters(out)
			return nil, err
		}
		out[ev] = c
	}
	return out, nil
}

func readCounters(cs map[string]*tracefs.Counter) (map[string]uint64, error) {
	out := map[string]uint64{}
	for ev, c := range cs {
		n, err := c.Count()
		if err != nil {
			return nil, err
		}
		out[ev] = n
	}
	return out, nil
}

func closeCounters(cs map[string]*tracefs.Counter) {
	for _, c := range cs {
		c.Close()
	}
}

// hugePool is the default-size huge page pool's directory.
func hugePool() (dir string, sizeKB uint64, err error) {
	if sizeKB, err = meminfo("Hugepagesize"); err != nil {
		return "", 0, fmt.Errorf("finding the huge page size: %w", err)
	}
	dir = filepath.Join(hugepagesDir, fmt.Sprintf("hugepages-%dkB", sizeKB))
	if _, err := os.Stat(dir); err != nil {
		return "", 0, fmt.Errorf("finding the huge page pool: %w", err)
	}
	return dir, sizeKB, nil
}
