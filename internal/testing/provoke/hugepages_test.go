package provoke

import (
	"path/filepath"
	"strconv"
	"testing"
)

func poolValue(t *testing.T, sizeKB uint64, file string) int64 {
	t.Helper()
	n, err := readInt(filepath.Join(hugepagesDir, "hugepages-"+strconv.FormatUint(sizeKB, 10)+"kB", file))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// poolAtRest reads a pool's nr_hugepages holding the lock every change to
// that pool holds: package test binaries run in parallel, and another one
// may have grown the pool for its own test right now. Under the lock every
// other user has put its value back, so a before and an after read here
// compare this test's restore only (CI failed once: 1 before, 0 after).
func poolAtRest(t *testing.T, sizeKB uint64) int64 {
	t.Helper()
	unlock, err := lockPool(sizeKB)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	return poolValue(t, sizeKB, "nr_hugepages")
}

func TestReserveHugePages(t *testing.T) {
	requireRoot(t, "changes the hugepage pool")
	const size = 2048
	before := poolAtRest(t, size)
	restore, err := ReserveHugePages(size, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restore() })
	if got := poolValue(t, size, "nr_hugepages"); got != 3 {
		t.Errorf("nr_hugepages = %d, want 3", got)
	}
	if got := poolValue(t, size, "nr_overcommit_hugepages"); got != 0 {
		t.Errorf("nr_overcommit_hugepages = %d, want 0", got)
	}
	if _, err := ReserveHugePages(size, 1); err == nil {
		t.Error("second reservation of the same size in one process succeeded")
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if err := restore(); err != nil {
		t.Fatalf("second restore: %v", err)
	}
	if got := poolAtRest(t, size); got != before {
		t.Errorf("nr_hugepages = %d after restore, want %d", got, before)
	}
	// Restored, the size can be reserved again.
	restore2, err := ReserveHugePages(size, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := restore2(); err != nil {
		t.Fatal(err)
	}
}

func TestReserveHugePagesUnsupportedSize(t *testing.T) {
	requireRoot(t, "reads the hugepage pools")
	if _, err := ReserveHugePages(12345, 1); err == nil {
		t.Error("reserving 12345 kB pages succeeded")
	}
}

func TestHugePageSizes(t *testing.T) {
	sizes, err := HugePageSizes()
	if err != nil {
		t.Skipf("no hugetlb support: %v", err)
	}
	if len(sizes) == 0 {
		t.Error("no sizes")
	}
}
