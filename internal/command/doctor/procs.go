package doctor

import (
	"errors"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/procfs"
)

// Process is what the page table and huge page checks need of one
// process, from /proc/PID/status (and /proc/PID/limits for the few that
// map large shared memory). Sizes are in bytes.
type Process struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	UID  uint64 `json:"uid"`
	// PTE is VmPTE: the process's page tables. With 4 KiB pages every
	// process that maps a shared area pays 8 bytes per 4 KiB of it.
	PTE          uint64 `json:"vm_pte"`
	RSSShmem     uint64 `json:"rss_shmem"`     // shared memory (SysV, tmpfs, shared anonymous) resident
	HugetlbPages uint64 `json:"hugetlb_pages"` // hugetlb memory mapped (4.4+)
	Locked       uint64 `json:"vm_lck"`
	// Memlock is the soft RLIMIT_MEMLOCK, read for large shared memory
	// users only; MemlockKnown says whether it was.
	Memlock      uint64 `json:"memlock,omitempty"`
	MemlockKnown bool   `json:"memlock_known,omitempty"`
}

// Unlimited is how /proc/PID/limits' "unlimited" reads.
const Unlimited = ^uint64(0)

// Processes is the process scan.
type Processes struct {
	List []Process `json:"-"`
	// Unreadable counts processes whose status could not be read
	// (hidepid, another user's process under a restrictive LSM); gone
	// processes are not counted.
	Unreadable int `json:"unreadable"`
	// Kswapd holds the kswapd threads' CPU time since they started.
	Kswapd []KernelThread `json:"kswapd,omitempty"`
}

// KernelThread is a kernel thread's CPU use.
type KernelThread struct {
	PID        int     `json:"pid"`
	Comm       string  `json:"comm"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

// largeShm is how much shared memory makes a process worth a limits
// read: the smallest of 1 GiB and 5% of memory, but at least 128 MiB.
func largeShm(memTotalKB uint64) uint64 {
	return min(max(memTotalKB*1024/20, 128<<20), 1<<30)
}

// scanProcesses reads every process's status. It stays well under a
// second for thousands of processes: one small file each, and limits only
// for large shared memory users.
func scanProcesses(fs procfs.FS, memTotalKB uint64) (Processes, error) {
	procs, err := fs.AllProcs()
	if err != nil {
		return Processes{}, err
	}
	var out Processes
	threshold := largeShm(memTotalKB)
	for _, p := range procs {
		st, err := p.NewStatus()
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) && !strings.Contains(err.Error(), "no such process") {
				out.Unreadable++
			}
			continue
		}
		if strings.HasPrefix(st.Name, "kswapd") {
			if s, err := p.Stat(); err == nil {
				out.Kswapd = append(out.Kswapd, KernelThread{PID: p.PID, Comm: st.Name, CPUSeconds: s.CPUTime()})
			}
		}
		if st.VmPTE == 0 && st.RssShmem == 0 && st.HugetlbPages == 0 {
			continue // kernel threads and tiny processes
		}
		pr := Process{
			PID: p.PID, Comm: st.Name, UID: st.UIDs[0],
			PTE: st.VmPTE, RSSShmem: st.RssShmem, HugetlbPages: st.HugetlbPages, Locked: st.VmLck,
		}
		if pr.RSSShmem >= threshold || pr.HugetlbPages >= threshold {
			if l, err := p.Limits(); err == nil {
				pr.Memlock, pr.MemlockKnown = l.LockedMemory, true
			}
		}
		out.List = append(out.List, pr)
	}
	slices.SortFunc(out.List, func(a, b Process) int {
		if a.PTE != b.PTE {
			if a.PTE > b.PTE {
				return -1
			}
			return 1
		}
		return a.PID - b.PID
	})
	return out, nil
}
