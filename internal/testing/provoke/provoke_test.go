package provoke

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/memtrace/memtrace/internal/probe/tracefs"
)

// TestMain checks, after all tests, that nothing of ours is left behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		if left := leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "left behind: %s\n", strings.Join(left, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

func leftovers() []string {
	var left []string
	if h, err := memoryHierarchy(); err == nil {
		m, _ := filepath.Glob(filepath.Join(h.mnt, fmt.Sprintf("%s%d-*", CgroupPrefix, os.Getpid())))
		left = append(left, m...)
	}
	for _, dir := range []string{tracefs.DefaultDir, "/sys/kernel/debug/tracing"} {
		m, _ := filepath.Glob(filepath.Join(dir, "instances", fmt.Sprintf("%s%d-*", tracefs.InstancePrefix, os.Getpid())))
		left = append(left, m...)
	}
	return left
}

func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: %s", why)
	}
}

// requireV1 skips where the method needs the cgroup v1 memory controller.
func requireV1(t *testing.T) {
	t.Helper()
	h, err := memoryHierarchy()
	if err != nil {
		t.Skipf("no memory cgroup controller mounted: %v", err)
	}
	if h.v2 {
		t.Skip("memory controller is on cgroup v2; this method needs v1 (memory.oom_control, per-thread membership)")
	}
}

var commSeq atomic.Int32

// testComm returns a thread name unique to this test binary and call, so
// that counters filtering on comm see only this test's child.
func testComm(tag string) string {
	c := fmt.Sprintf("t%d%s%d", os.Getpid()%100000, tag, commSeq.Add(1))
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

// counter returns a tracefs counter removed when the test ends.
func counter(t *testing.T, system, event, filter string) *tracefs.Counter {
	t.Helper()
	dir, unmount, err := tracefs.Mount()
	if err != nil {
		t.Fatalf("mounting tracefs: %v", err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Error(err)
		}
	})
	c, err := tracefs.NewCounter(dir, system, event, filter)
	if err != nil {
		t.Fatalf("counting %s:%s: %v", system, event, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func count(t *testing.T, c *tracefs.Counter) uint64 {
	t.Helper()
	n, err := c.Count()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func hits(t *testing.T, c *tracefs.Counter) []tracefs.Hit {
	t.Helper()
	h, err := c.Hits()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkAttribution fails unless every hit came from the report's child.
func checkAttribution(t *testing.T, rep Report, hs []tracefs.Hit) {
	t.Helper()
	for _, h := range hs {
		if len(rep.Tids) == 0 || h.Tid != rep.Tids[0] || (h.Tgid != 0 && h.Tgid != rep.Pid) || h.Comm != rep.Comm {
			t.Errorf("hit from %s tid %d tgid %d, want %s tid %v pid %d: %s", h.Comm, h.Tid, h.Tgid, rep.Comm, rep.Tids, rep.Pid, h.Text)
		}
	}
}
