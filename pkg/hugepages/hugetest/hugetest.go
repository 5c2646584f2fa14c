// Package hugetest is for tests that change the host's hugetlb pools: it
// resizes a pool for the length of a test and restores it afterwards,
// serialised across test binaries, since `go test ./...` runs packages in
// parallel and every package that reserves pages sees the same pools.
//
// It stands in for pkg/provoke.ReserveHugePages, which had not landed when
// this was written, and takes the same lock files, so the two exclude each
// other.
package hugetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// LockPath is the lock file that serialises changes to the pool of sizeKB
// pages between test processes (the name pkg/provoke uses).
func LockPath(sizeKB uint64) string {
	dir := "/run/lock"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = os.TempDir()
	}
	return filepath.Join(dir, fmt.Sprintf("memtrace-provoke-hugepages-%dkB.lock", sizeKB))
}

// PoolDir is the sysfs directory of the pool of sizeKB pages.
func PoolDir(sizeKB uint64) string {
	return fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB", sizeKB)
}

// RequireRoot skips a test that needs root, with the reason.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: changes hugetlb pools and loads BPF programs")
	}
}

// Lock takes the lock of the pool of sizeKB pages until the test ends.
func Lock(t testing.TB, sizeKB uint64) {
	t.Helper()
	path := LockPath(sizeKB)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("opening pool lock: %v", err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("waiting for the hugetlb pool lock %s: %v", path, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	})
}

// Reserve sets the pool of sizeKB pages to n pages for the rest of the
// test (taking the pool lock first) and restores the previous size at the
// end. It fails the test when the kernel cannot provide n pages: a pool
// smaller than asked would make the test's verdicts wrong.
func Reserve(t testing.TB, sizeKB uint64, n int) {
	t.Helper()
	RequireRoot(t)
	Lock(t, sizeKB)
	file := filepath.Join(PoolDir(sizeKB), "nr_hugepages")
	old, err := readInt(file)
	if err != nil {
		t.Fatalf("reading the %d kB pool: %v", sizeKB, err)
	}
	t.Cleanup(func() {
		if err := writeInt(file, old); err != nil {
			t.Errorf("restoring %s to %d: %v", file, old, err)
		}
		if got, _ := readInt(file); got != old {
			t.Errorf("restoring %s: now %d, want %d (pages still in use?)", file, got, old)
		}
	})
	if err := writeInt(file, n); err != nil {
		t.Fatalf("resizing the %d kB pool to %d: %v", sizeKB, n, err)
	}
	if got, _ := readInt(file); got != n {
		t.Fatalf("resizing the %d kB pool: the kernel gave %d pages, want %d (memory too fragmented?)", sizeKB, got, n)
	}
	free, _ := readInt(filepath.Join(PoolDir(sizeKB), "free_hugepages"))
	resv, _ := readInt(filepath.Join(PoolDir(sizeKB), "resv_hugepages"))
	if free-resv < n {
		t.Fatalf("the %d kB pool has %d pages but only %d free and unreserved: something else holds huge pages", sizeKB, n, free-resv)
	}
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func writeInt(path string, v int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(v)+"\n"), 0o644)
}
