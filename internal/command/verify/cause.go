package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Cause is why a huge-page request failed, as far as the host shows it.
type Cause struct {
	// Kind is one of pool_too_small, pool_short_at_call,
	// no_pool_for_size, not_permitted, segment_limits,
	// hugetlb_cgroup_rsvd_limit, unknown.
	Kind   string `json:"kind"`
	Text   string `json:"text"`
	Advice string `json:"advice,omitempty"`

	PageSizeKB  uint64 `json:"page_size_kb,omitempty"`
	NeededPages uint64 `json:"needed_pages,omitempty"`
	// Pool is the pool of the requested size as read right after the
	// failure (ReadAfter later): the kernel's state at the call itself
	// cannot be read from user space.
	Pool      *sysstate.HugePool `json:"pool,omitempty"`
	ReadAfter time.Duration      `json:"read_after_ns,omitempty"`

	UID             *uint32  `json:"uid,omitempty"`
	GID             *uint32  `json:"gid,omitempty"`
	Groups          []uint32 `json:"groups,omitempty"`
	HugetlbShmGroup *int64   `json:"hugetlb_shm_group,omitempty"`
	MemlockBytes    *uint64  `json:"memlock_bytes,omitempty"`
	// Cgroup is the hugetlb cgroup whose limit refused the request.
	Cgroup *hugetlbcg.Limits `json:"hugetlb_cgroup,omitempty"`
}

// FailureState is what verify reads right after a failed request.
type FailureState struct {
	At              time.Time
	Pools           []sysstate.HugePool
	HugetlbShmGroup int64
	ShmMax          uint64
	// Status and MemlockBytes are of the failing process; nil when it
	// had already exited (PostgreSQL with huge_pages=on exits at once).
	Status       *hugepages.Status
	MemlockBytes *uint64
}

// ReadFailureState reads the pools, the permission settings and the
// failing process's credentials and memlock limit.
func ReadFailureState(procRoot, sysRoot string, pid int) FailureState {
	snap := sysstate.Take(procRoot, sysRoot)
	st := FailureState{At: time.Now(), Pools: snap.HugePools, HugetlbShmGroup: snap.Sysctl.HugetlbShmGroup}
	if b, err := os.ReadFile(filepath.Join(procRoot, "sys/kernel/shmmax")); err == nil {
		st.ShmMax, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	if s, err := hugepages.ReadStatus(procRoot, pid); err == nil {
		st.Status = &s
		if l, err := hugepages.MemlockLimit(procRoot, pid); err == nil {
			st.MemlockBytes = &l
		}
	}
	return st
}

func (st FailureState) pool(sizeKB uint64) *sysstate.HugePool {
	for i := range st.Pools {
		if st.Pools[i].PageSizeKB == sizeKB {
			p := st.Pools[i]
			return &p
		}
	}
	return nil
}

func (st FailureState) poolSizes() string {
	var s []string
	for _, p := range st.Pools {
		s = append(s, kib(p.PageSizeKB))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// Explain says why a failed huge-page request failed. c.Time and st.At
// give how stale the pool reading is.
func Explain(c Call, st FailureState, defaultPageKB uint64) *Cause {
	if c.OK || !c.Huge {
		return nil
	}
	kb := c.PageSize >> 10
	cause := &Cause{Kind: "unknown", PageSizeKB: kb}
	if kb > 0 {
		cause.NeededPages = (c.Size + c.PageSize - 1) / c.PageSize
	}
	if !st.At.IsZero() && !c.Time.IsZero() && st.At.After(c.Time) {
		cause.ReadAfter = st.At.Sub(c.Time)
	}
	pool := st.pool(kb)
	cause.Pool = pool
	switch c.Errno {
	case "ENOMEM":
		explainNoMem(cause, pool, defaultPageKB)
	case "EINVAL":
		if pool == nil {
			cause.Kind = "no_pool_for_size"
			cause.Text = fmt.Sprintf("this kernel has no pool of %s pages (pools: %s)", kib(kb), st.poolSizes())
			cause.Advice = "ask for a page size the kernel has, or boot with hugepagesz= for this size"
			break
		}
		if c.Call == event.CallShmget && st.ShmMax > 0 && c.Size > st.ShmMax {
			cause.Kind = "segment_limits"
			cause.Text = fmt.Sprintf("the %s segment is larger than kernel.shmmax (%s)", size(c.Size), size(st.ShmMax))
			cause.Advice = fmt.Sprintf("sysctl -w kernel.shmmax=%d", c.Size)
			break
		}
		cause.Text = "the kernel refused the size, address or flags (EINVAL)"
	case "EPERM":
		explainPerm(cause, c, st)
	case "ENOSPC":
		cause.Kind = "segment_limits"
		cause.Text = "the System V limits are exhausted (kernel.shmall pages or kernel.shmmni segments)"
		cause.Advice = "compare ipcs -m with sysctl kernel.shmall kernel.shmmni"
	default:
		cause.Text = fmt.Sprintf("the kernel answered %s", c.Errno)
	}
	return cause
}

func explainNoMem(cause *Cause, pool *sysstate.HugePool, defaultPageKB uint64) {
	kb := cause.PageSizeKB
	if pool == nil {
		cause.Text = fmt.Sprintf("ENOMEM and no pool of %s pages", kib(kb))
		return
	}
	avail := pool.NeverUsed()
	if pool.Overcommit > pool.Surplus {
		avail += pool.Overcommit - pool.Surplus // surplus pages the kernel may still allocate
	}
	state := fmt.Sprintf("the pool had %d pages (HugePages_Total), %d free of which %d reserved: %d available",
		pool.Total, pool.Free, pool.Reserved, avail)
	if avail < cause.NeededPages {
		cause.Kind = "pool_too_small"
		cause.Text = fmt.Sprintf("pool too small: needed %d pages of %s, %s", cause.NeededPages, kib(kb), state)
		want := pool.Total + (cause.NeededPages - avail)
		if kb == defaultPageKB {
			cause.Advice = fmt.Sprintf("raise vm.nr_hugepages to at least %d (sysctl -w vm.nr_hugepages=%d, and in /etc/sysctl.conf)", want, want)
		} else {
			cause.Advice = fmt.Sprintf("echo %d > /sys/kernel/mm/hugepages/hugepages-%dkB/nr_hugepages (or hugepages=%d on the kernel command line)", want, kb, want)
		}
		return
	}
	cause.Kind = "pool_short_at_call"
	cause.Text = fmt.Sprintf("ENOMEM although %s now, enough for the %d pages needed: pages were held by another mapping at the time of the call, or a hugetlb cgroup limit refused them",
		state, cause.NeededPages)
}

func explainPerm(cause *Cause, c Call, st FailureState) {
	cause.Kind = "not_permitted"
	group := st.HugetlbShmGroup
	cause.HugetlbShmGroup = &group
	if c.Call != event.CallShmget {
		cause.Text = "not permitted (a security module or seccomp policy refused the mapping)"
		return
	}
	need := fmt.Sprintf("SHM_HUGETLB needs CAP_IPC_LOCK, membership of vm.hugetlb_shm_group (%d), or a memlock limit covering the %s segment", group, size(c.Size))
	if st.Status == nil {
		cause.Text = "not permitted: " + need + " (the process exited before memtrace could read its credentials)"
		cause.Advice = advicePerm(group, c.Size)
		return
	}
	s := st.Status
	cause.UID, cause.GID, cause.Groups = &s.UID, &s.GID, s.Groups
	cause.MemlockBytes = st.MemlockBytes
	var why []string
	if !s.InGroup(uint32(group)) {
		why = append(why, fmt.Sprintf("uid %d (gid %d, groups %s) is not in vm.hugetlb_shm_group (%d)", s.UID, s.GID, groupList(s.Groups), group))
	}
	if st.MemlockBytes != nil && *st.MemlockBytes != hugepages.Unlimited && *st.MemlockBytes < c.Size {
		why = append(why, fmt.Sprintf("RLIMIT_MEMLOCK (%s) is below the %s segment", size(*st.MemlockBytes), size(c.Size)))
	}
	if len(why) == 0 {
		cause.Text = "not permitted: " + need
	} else {
		cause.Text = "not permitted: " + strings.Join(why, ", and ")
	}
	cause.Advice = advicePerm(group, c.Size)
}

func advicePerm(group int64, size uint64) string {
	return fmt.Sprintf("put the database's group in vm.hugetlb_shm_group (sysctl -w vm.hugetlb_shm_group=GID; now %d), or raise memlock in /etc/security/limits.conf to at least %d (kB)",
		group, (size+1023)>>10)
}

func groupList(g []uint32) string {
	if len(g) == 0 {
		return "none"
	}
	s := make([]string, len(g))
	for i, x := range g {
		s[i] = strconv.FormatUint(uint64(x), 10)
	}
	return strings.Join(s, " ")
}
