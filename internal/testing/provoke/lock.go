package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on a lock file named after name, so
// that users of this package in several processes (go test runs package
// test binaries in parallel) do not interleave changes to shared kernel
// state such as a hugepage pool or the warn_alloc rate limit. flock locks
// belong to the open file, so goroutines of one process exclude each other
// too. The lock files are left in place: removing them would race.
func lockFile(name string, timeout time.Duration) (unlock func(), err error) {
	dir := "/run/lock"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "memtrace-provoke-"+name+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockPool takes the lock every change to the huge page pool of sizeKB
// holds (GrowHugePages, ReserveHugePages, Compaction, and tests reading
// the pool at rest).
func lockPool(sizeKB uint64) (unlock func(), err error) {
	return lockFile(fmt.Sprintf("hugepages-%dkB", sizeKB), 2*time.Minute)
}

// lockZoneReclaimMode takes the lock every change to vm.zone_reclaim_mode
// holds.
func lockZoneReclaimMode() (unlock func(), err error) {
	return lockFile("zone-reclaim-mode", 2*time.Minute)
}

// lockFreeMemory takes the lock of the triggers that size their work from
// the machine's free memory and take most of it for their run
// (Compaction, NodeReclaim): one must not measure free memory while
// another process's run holds it, and find it all back by the time it
// reads. Taken before lockPool, in that order by every holder.
func lockFreeMemory() (unlock func(), err error) {
	return lockFile("free-memory", 4*time.Minute)
}
