package sysstate

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestHostPagetypeinfoReadOnce: the running kernel's pagetypeinfo, which
// costs the kernel a walk of every free list under the zone lock for its
// first line, is read once per process, however many snapshots and
// sessions ask for the pageblock order. Bytes read are counted by the
// kernel (/proc/self/io).
func TestHostPagetypeinfoReadOnce(t *testing.T) {
	if _, err := os.ReadFile("/proc/pagetypeinfo"); err != nil {
		t.Skipf("/proc/pagetypeinfo not readable (needs root): %v", err)
	}
	first, source, err := readPageblockOrder("/proc", "/sys", 2048, defaultMaxOrder)
	if err != nil || source != PageblockFromPagetypeinfo {
		t.Fatalf("pageblock order %d from %q: %v", first, source, err)
	}
	before := readChars(t)
	again, _, err := readPageblockOrder("/proc", "/sys", 2048, defaultMaxOrder)
	read := readChars(t) - before
	if err != nil || again != first {
		t.Fatalf("second read: order %d (%v), first %d", again, err, first)
	}
	// readChars itself reads /proc/self/io once (well under 1 KiB); the
	// pagetypeinfo of any machine is larger.
	if read > 1024 {
		t.Errorf("the second look-up read %d bytes: pagetypeinfo was read again", read)
	}
}

// readChars is this process's rchar: bytes read by read(2) and friends.
func readChars(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no rchar in /proc/self/io")
	return 0
}
