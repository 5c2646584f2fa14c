package tracefs

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseTrace(t *testing.T) {
	text := `# tracer: nop
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
               c-20450   (  20449) [001] .....  1308.989505: mm_page_alloc: page=0000000000000000 pfn=0x0 order=2 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO
               e-17075   [000] d..3.  1086.241307: mm_page_alloc_extfrag: page=00000000a02c9db3 pfn=0x1c1000 alloc_order=0 fallback_order=10
   my-comm 2-x-9   (-------) [001] .....    12.000001: sys_shmget(key: 0, size: 200000)
         python3-22223   (  22223) [001] .....  1389.110993: sys_getppid -> 0x56cd
not a trace line
`
	hits := ParseTrace(text)
	if len(hits) != 4 {
		t.Fatalf("got %d hits, want 4: %+v", len(hits), hits)
	}
	h := hits[0]
	if h.Comm != "c" || h.Tid != 20450 || h.Tgid != 20449 || h.CPU != 1 || h.Event != "mm_page_alloc" {
		t.Errorf("hit 0 = %+v", h)
	}
	if h.Int("order", -1) != 2 || h.Fields["gfp_flags"] != "GFP_KERNEL_ACCOUNT|__GFP_ZERO" || h.Int("pfn", -1) != 0 {
		t.Errorf("hit 0 fields = %v", h.Fields)
	}
	if h := hits[1]; h.Tgid != 0 || h.Tid != 17075 || h.Int("fallback_order", -1) != 10 || h.Time != 1086.241307 {
		t.Errorf("hit 1 = %+v", h)
	}
	if h := hits[2]; h.Comm != "my-comm 2-x" || h.Tid != 9 || h.Tgid != 0 || h.Event != "sys_shmget" || !strings.HasPrefix(h.Text, "sys_shmget(") {
		t.Errorf("hit 2 = %+v", h)
	}
	if h := hits[3]; h.Event != "sys_getppid" || h.Text != "sys_getppid -> 0x56cd" {
		t.Errorf("hit 3 = %+v", h)
	}
}

func mountForTest(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts tracefs and creates trace instances")
	}
	dir, unmount, err := Mount()
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

func TestMount(t *testing.T) {
	dir := mountForTest(t)
	if !isTracefs(dir) {
		t.Fatalf("%s is not a tracefs", dir)
	}
	// A second user in the same process shares the mount.
	dir2, unmount2, err := Mount()
	if err != nil || dir2 != dir {
		t.Fatalf("second Mount = %q, %v; want %q", dir2, err, dir)
	}
	if err := unmount2(); err != nil {
		t.Fatal(err)
	}
	if !isTracefs(dir) {
		t.Fatalf("%s unmounted while still in use", dir)
	}
}

// TestCounter counts a syscall we make a known number of times from a
// known thread, which also checks the attribution parsed from the trace.
func TestCounter(t *testing.T) {
	dir := mountForTest(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := unix.Gettid()

	c, err := NewCounter(dir, "syscalls", "sys_enter_getppid", "common_pid == "+strconv.Itoa(tid))
	if err != nil {
		t.Fatal(err)
	}
	inst := c.Dir()
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(inst); !os.IsNotExist(err) {
			t.Errorf("instance %s still exists after Close (stat: %v)", inst, err)
		}
	}()

	const calls = 7
	for i := 0; i < calls; i++ {
		unix.Getppid()
	}
	if n, err := c.Count(); err != nil || n != calls {
		t.Fatalf("Count = %d, %v; want %d", n, err, calls)
	}
	hits, err := c.Hits()
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != calls {
		t.Fatalf("got %d hits, want %d", len(hits), calls)
	}
	for _, h := range hits {
		if h.Tid != tid || h.Event != "sys_getppid" {
			t.Errorf("hit %+v: want tid %d", h, tid)
		}
		// The tgid column is the kernel's saved-tgid cache, filled at a
		// sched_switch while record-tgid is on: a thread whose pid was
		// reused and that has not switched since shows the previous
		// owner's process (seen in CI: tid 9020 under tgid 9002, ours
		// 9017). Only the parse is checked here; the tid is exact.
		if h.Tgid < 0 {
			t.Errorf("hit %+v: tgid not parsed", h)
		} else if h.Tgid != 0 && h.Tgid != os.Getpid() {
			t.Logf("hit %+v: tgid %d from the kernel's stale cache, ours %d", h, h.Tgid, os.Getpid())
		}
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	unix.Getppid()
	if n, err := c.Count(); err != nil || n != 1 {
		t.Fatalf("Count after Reset and one call = %d, %v; want 1", n, err)
	}
}

// TestCounterRejectsBadFilter checks that a filter the kernel refuses is an
// error (and leaves no instance behind) rather than an unfiltered counter.
func TestCounterRejectsBadFilter(t *testing.T) {
	dir := mountForTest(t)
	before := instances(t, dir)
	c, err := NewCounter(dir, "kmem", "mm_page_alloc", "pfn == -1")
	if err == nil {
		c.Close()
		t.Fatal("NewCounter accepted pfn == -1 on an unsigned field")
	}
	t.Logf("error as expected: %v", err)
	if after := instances(t, dir); after != before {
		t.Errorf("instances changed from %d to %d", before, after)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := mountForTest(t)
	// pid 0x7ffffff0 cannot exist (pid_max is at most 4194304); the
	// sequence number is our pid, as trace instances are seen by every
	// test binary running this test at the same time.
	stale := filepath.Join(dir, "instances", InstancePrefix+"2147483632-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := RemoveStale(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		unix.Rmdir(stale)
		t.Fatalf("stale instance not removed (stat: %v)", err)
	}
}

func instances(t *testing.T, dir string) int {
	t.Helper()
	// Only ours: other test binaries may be creating instances meanwhile.
	m, err := filepath.Glob(filepath.Join(dir, "instances", InstancePrefix+strconv.Itoa(os.Getpid())+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}
