package loader

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// TestLiftMemlock: the limit is raised only on a kernel that charges maps
// to it (the 5.10 guest of make test-kernels), and is as it was elsewhere
// (this 6.18 host): verify's database inherits it.
func TestLiftMemlock(t *testing.T) {
	privtest.RequireRoot(t)
	var before, after unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, nil, &before); err != nil {
		t.Fatal(err)
	}
	charged, err := mapsChargeMemlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := liftMemlock(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, nil, &after); err != nil {
		t.Fatal(err)
	}
	var u unix.Utsname
	unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	old := kernelBefore(release, 5, 11)
	switch {
	case charged != old:
		t.Errorf("kernel %s: maps charged to RLIMIT_MEMLOCK %v", release, charged)
	case charged && after.Cur != unix.RLIM_INFINITY:
		t.Errorf("kernel %s: RLIMIT_MEMLOCK %d after, want unlimited", release, after.Cur)
	case !charged && after != before:
		t.Errorf("kernel %s: RLIMIT_MEMLOCK %v after, %v before", release, after, before)
	}
}

// kernelBefore compares a release's major.minor with major.minor.
func kernelBefore(release string, major, minor int) bool {
	var a, b int
	if n, _ := fmt.Sscanf(release, "%d.%d", &a, &b); n < 2 {
		return false
	}
	return a < major || a == major && b < minor
}
