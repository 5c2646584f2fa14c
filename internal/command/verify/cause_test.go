package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

func failedCall(call event.Call, size, pageSize uint64, errno string) Call {
	return Call{Call: call, Size: size, PageSize: pageSize, Huge: true, Errno: errno, Time: time.Unix(100, 0)}
}

func pools(p2M sysstate.HugePool) []sysstate.HugePool {
	p2M.PageSizeKB = 2048
	return []sysstate.HugePool{p2M, {PageSizeKB: 1048576}}
}

func TestExplainPoolTooSmall(t *testing.T) {
	st := FailureState{At: time.Unix(100, 5e6), Pools: pools(sysstate.HugePool{Total: 13007, Free: 11813, Reserved: 3372})}
	// 20 GiB needs 10240 pages; the seed's pool has 8441 unreserved.
	c := Explain(failedCall(event.CallMmap, 20<<30, 2*mib, "ENOMEM"), st, 2048)
	if c.Kind != "pool_too_small" || c.NeededPages != 10240 || c.ReadAfter != 5*time.Millisecond {
		t.Fatalf("cause %+v", c)
	}
	for _, want := range []string{"needed 10240 pages of 2 MiB", "13007 pages", "11813 free of which 3372 reserved: 8441 available"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("text %q lacks %q", c.Text, want)
		}
	}
	// Total + (needed - available) = 13007 + 1799.
	if !strings.Contains(c.Advice, "vm.nr_hugepages to at least 14806") {
		t.Errorf("advice %q", c.Advice)
	}
	// Overcommit counts as available until the surplus reaches it.
	st.Pools = pools(sysstate.HugePool{Total: 0, Overcommit: 100, Surplus: 40})
	if c := Explain(failedCall(event.CallMmap, 100*mib, 2*mib, "ENOMEM"), st, 2048); c.Kind != "pool_short_at_call" {
		t.Errorf("with overcommit room: %+v", c)
	}
	// A pool that is not the default size is resized in sysfs.
	st.Pools = []sysstate.HugePool{{PageSizeKB: 2048}, {PageSizeKB: 1048576, Total: 1, Free: 1}}
	c = Explain(failedCall(event.CallMmap, 4<<30, 1<<30, "ENOMEM"), st, 2048)
	if c.Kind != "pool_too_small" || !strings.Contains(c.Advice, "echo 4 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages") {
		t.Errorf("1 GiB pool: %+v", c)
	}
}

func TestExplainPoolShortAtCall(t *testing.T) {
	st := FailureState{Pools: pools(sysstate.HugePool{Total: 100, Free: 100})}
	c := Explain(failedCall(event.CallMmap, 144*mib, 2*mib, "ENOMEM"), st, 2048)
	if c.Kind != "pool_short_at_call" || !strings.Contains(c.Text, "enough for the 72 pages") {
		t.Errorf("cause %+v", c)
	}
}

func TestExplainNoPool(t *testing.T) {
	st := FailureState{Pools: pools(sysstate.HugePool{})}
	c := Explain(failedCall(event.CallShmget, 16<<30, 16<<30, "EINVAL"), st, 2048)
	if c.Kind != "no_pool_for_size" || !strings.Contains(c.Text, "no pool of 16 GiB pages (pools: 2 MiB, 1 GiB)") {
		t.Errorf("cause %+v", c)
	}
	st.ShmMax = 1 << 30
	c = Explain(failedCall(event.CallShmget, 2<<30, 2*mib, "EINVAL"), st, 2048)
	if c.Kind != "segment_limits" || !strings.Contains(c.Text, "kernel.shmmax (1 GiB)") {
		t.Errorf("shmmax: %+v", c)
	}
	c = Explain(failedCall(event.CallMmap, 2<<30, 2*mib, "EINVAL"), st, 2048)
	if c.Kind != "unknown" {
		t.Errorf("mmap EINVAL with a pool: %+v", c)
	}
}

func TestExplainNotPermitted(t *testing.T) {
	limit := uint64(64 << 10)
	st := FailureState{
		Pools: pools(sysstate.HugePool{Total: 10, Free: 10}), HugetlbShmGroup: 0,
		Status:       &hugepages.Status{UID: 65534, GID: 65534, Groups: []uint32{65534}},
		MemlockBytes: &limit,
	}
	c := Explain(failedCall(event.CallShmget, 2*mib, 2*mib, "EPERM"), st, 2048)
	if c.Kind != "not_permitted" || c.UID == nil || *c.UID != 65534 || c.MemlockBytes == nil {
		t.Fatalf("cause %+v", c)
	}
	for _, want := range []string{"uid 65534 (gid 65534, groups 65534) is not in vm.hugetlb_shm_group (0)", "RLIMIT_MEMLOCK (64 KiB) is below the 2 MiB segment"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("text %q lacks %q", c.Text, want)
		}
	}
	if !strings.Contains(c.Advice, "memlock in /etc/security/limits.conf to at least 2048") {
		t.Errorf("advice %q", c.Advice)
	}
	// The process exited before its credentials could be read.
	st.Status, st.MemlockBytes = nil, nil
	c = Explain(failedCall(event.CallShmget, 2*mib, 2*mib, "EPERM"), st, 2048)
	if c.Kind != "not_permitted" || !strings.Contains(c.Text, "exited before") {
		t.Errorf("exited: %+v", c)
	}
}

func TestExplainOther(t *testing.T) {
	st := FailureState{Pools: pools(sysstate.HugePool{})}
	if c := Explain(failedCall(event.CallShmget, 2*mib, 2*mib, "ENOSPC"), st, 2048); c.Kind != "segment_limits" {
		t.Errorf("ENOSPC: %+v", c)
	}
	if c := Explain(failedCall(event.CallShmget, 2*mib, 2*mib, "EEXIST"), st, 2048); c.Kind != "unknown" || !strings.Contains(c.Text, "EEXIST") {
		t.Errorf("EEXIST: %+v", c)
	}
	ok := failedCall(event.CallMmap, 2*mib, 2*mib, "")
	ok.OK = true
	if Explain(ok, st, 2048) != nil {
		t.Error("a successful call has a cause")
	}
}

func TestReadFailureState(t *testing.T) {
	const root = "../hugepages/testdata/oracle"
	st := ReadFailureState(root+"/proc", root+"/sys", 5120)
	if st.Status == nil || st.Status.UID != 101 || st.MemlockBytes == nil || *st.MemlockBytes != 65536 {
		t.Fatalf("state %+v", st)
	}
	if st.HugetlbShmGroup != 54322 || st.ShmMax != 8589934592 || len(st.Pools) != 2 {
		t.Errorf("state %+v", st)
	}
	if st := ReadFailureState(root+"/proc", root+"/sys", 999999); st.Status != nil {
		t.Errorf("exited process has a status")
	}
}
