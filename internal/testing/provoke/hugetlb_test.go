package provoke

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/probe/tracefs"
)

func TestHuge(t *testing.T) {
	requireRoot(t, "changes the hugepage pool and reads tracefs")
	const pages, repeat = 2, 2
	for _, op := range []HugeOp{ShmGet, ShmAttach, Mmap, MmapFallback} {
		for _, reserved := range []bool{true, false} {
			name := fmt.Sprintf("%v/reserved=%v", op, reserved)
			t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
				testHuge(t, op, reserved, pages, repeat)
			})
		}
	}
}

func testHuge(t *testing.T, op HugeOp, reserved bool, pages, repeat int) {
	pool := 0
	if reserved {
		pool = pages
	}
	restore, err := ReserveHugePages(0, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Error(err)
		}
	})

	comm := testComm("hp")
	who := `comm == "` + comm + `"`
	shm := op == ShmGet || op == ShmAttach
	requests, failures, attaches, plain := syscallCounters(t, shm, who)

	rep, err := Huge(HugeRequest{Op: op, Pages: pages, Repeat: repeat}, WithComm(comm))
	t.Logf("report: %+v", rep)
	if err != nil {
		t.Fatal(err)
	}
	wantFailed := 0
	if !reserved {
		wantFailed = repeat
	}
	if rep.Attempts != repeat || rep.Failed != wantFailed {
		t.Errorf("Attempts, Failed = %d, %d; want %d, %d", rep.Attempts, rep.Failed, repeat, wantFailed)
	}
	want := map[string]int{"requests": repeat, "failures": wantFailed, "shmat": 0, "fallback mmap": 0}
	if op == ShmAttach && reserved {
		want["shmat"] = repeat
	}
	if op == MmapFallback && !reserved {
		want["fallback mmap"] = repeat
	}
	for name, c := range map[string]*countedEvent{"requests": requests, "failures": failures, "shmat": attaches, "fallback mmap": plain} {
		if c == nil {
			continue
		}
		if got := count(t, c.Counter); got != uint64(want[name]) {
			t.Errorf("%s (%s): counted %d, want %d", name, c.what, got, want[name])
		}
		checkAttribution(t, rep, hits(t, c.Counter))
	}
	checkNoSegments(t, rep.Pid)
	if reserved {
		if free := poolValue(t, 2048, "free_hugepages"); free != int64(pool) {
			t.Errorf("free_hugepages = %d after Huge, want %d (all released)", free, pool)
		}
	}
}

type countedEvent struct {
	*tracefs.Counter
	what string
}

// syscallCounters sets up the tracefs counters that independently check
// the child's system calls.
func syscallCounters(t *testing.T, shm bool, who string) (requests, failures, attaches, plain *countedEvent) {
	mk := func(event, filter string) *countedEvent {
		return &countedEvent{counter(t, "syscalls", event, who+" && "+filter), event + " " + filter}
	}
	if shm {
		requests = mk("sys_enter_shmget", "shmflg & 0x800") // SHM_HUGETLB
		failures = mk("sys_exit_shmget", "ret == -12")
		attaches = mk("sys_enter_shmat", "shmid >= 0")
		return
	}
	requests = mk("sys_enter_mmap", "flags & 0x40000") // MAP_HUGETLB
	failures = mk("sys_exit_mmap", "ret == -12")
	// The Go runtime maps MAP_PRIVATE only, so a MAP_SHARED mapping without
	// MAP_HUGETLB is the fallback.
	plain = mk("sys_enter_mmap", "flags & 0x1 && !(flags & 0x40000)")
	return
}

// checkNoSegments fails if a System V segment created by pid still exists.
func checkNoSegments(t *testing.T, pid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, line := range lines[1:] {
		// key shmid perms size cpid lpid ...
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == fmt.Sprint(pid) {
			t.Errorf("segment left behind: %s", line)
		}
	}
}

func TestHugeGigantic(t *testing.T) {
	requireRoot(t, "changes the hugepage pool")
	const gb = 1 << 20
	sizes, _ := HugePageSizes()
	if !slices.Contains(sizes, gb) {
		t.Skip("no 1 GiB huge pages on this kernel")
	}
	restore, err := ReserveHugePages(gb, 1)
	if err != nil {
		t.Skipf("the kernel could not provide a 1 GiB page now (fragmented memory?): %v", err)
	}
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Error(err)
		}
	})
	comm := testComm("gp")
	c := counter(t, "syscalls", "sys_enter_mmap", `comm == "`+comm+`" && flags & 0x40000`)
	rep, err := Huge(HugeRequest{Op: Mmap, SizeKB: gb}, WithComm(comm))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Attempts != 1 || rep.Failed != 0 || count(t, c) != 1 {
		t.Errorf("report %+v, counted %d mmap(MAP_HUGETLB)", rep, count(t, c))
	}
	if want := uint64(30 << hugeShift); rep.Calls[0].Flags&(0x3f<<hugeShift) != want {
		t.Errorf("mmap flags %#x, want MAP_HUGE_1GB", rep.Calls[0].Flags)
	}
}
