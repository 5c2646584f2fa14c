package hugepages

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// TestCollectLive creates a System V segment on 2 MiB pages and one on
// base pages in this process and checks that the report finds both, on the
// right pages, attached by this process, and the pool's accounting moves.
func TestCollectLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: changes the hugetlb pool")
	}
	privtest.ReserveHugePages(t, 2048, 8)
	const shmHugetlb = 0o4000
	huge := attach(t, 6<<20, unix.IPC_CREAT|0o600|shmHugetlb)
	plain := attach(t, 6<<20, unix.IPC_CREAT|0o600)

	r, err := Collect(Options{MinSharedBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var pool *struct{ total, inUse, promised uint64 }
	for _, p := range r.Pools {
		if p.PageSizeKB == 2048 {
			pool = &struct{ total, inUse, promised uint64 }{p.Total, p.InUse(), p.InUseOrPromised()}
		}
	}
	// 3 pages of the segment: one touched (in use), all promised.
	if pool == nil || pool.total != 8 || pool.inUse < 1 || pool.promised < 3 {
		t.Errorf("pool %+v, want 8 pages with at least 1 in use and 3 promised", pool)
	}
	segs := map[int64]SegmentUse{}
	for _, s := range r.Segments {
		segs[s.ShmID] = s
	}
	me := os.Getpid()
	for id, wantHuge := range map[int]bool{huge: true, plain: false} {
		s, ok := segs[int64(id)]
		if !ok {
			t.Fatalf("segment %d not listed", id)
		}
		if s.OnHugePages == nil || *s.OnHugePages != wantHuge || len(s.Attachers) != 1 || s.Attachers[0].Pid != me {
			t.Errorf("segment %d: %+v, want on huge pages %v, attached by %d", id, s, wantHuge, me)
		}
	}
	var self *Process
	for i := range r.Processes {
		if r.Processes[i].Pid == me {
			self = &r.Processes[i]
		}
	}
	if self == nil {
		t.Fatalf("this process (%d) is not listed", me)
	}
	if self.HugetlbMappedKB() != 6<<10 || self.LargeSharedBaseKB != 6<<10 || len(self.SysV) < 2 {
		t.Errorf("this process: hugetlb %d kB, base %d kB, sysv %v", self.HugetlbMappedKB(), self.LargeSharedBaseKB, self.SysV)
	}
	if r.Sizing.Segments < 2 {
		t.Errorf("sizing counted %d segments", r.Sizing.Segments)
	}
}

// attach creates, attaches and touches a segment, removed at cleanup.
func attach(t *testing.T, size, flags int) int {
	t.Helper()
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, flags)
	if err != nil {
		t.Fatalf("shmget: %v", err)
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		t.Fatalf("shmat: %v", err)
	}
	t.Cleanup(func() {
		unix.SysvShmDetach(mem)
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	})
	mem[0] = 1
	return id
}
