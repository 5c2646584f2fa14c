package hugepages

import (
	"bufio"
	"errors"
	"github.com/memtrace/memtrace/internal/decode/mounts"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Process is one process that maps huge pages, System V segments or large
// shared memory, with the mappings that made it interesting.
type Process struct {
	Status
	// MemlockBytes is the soft RLIMIT_MEMLOCK (Unlimited when unlimited).
	MemlockBytes uint64 `json:"memlock_bytes"`
	// Hugetlb sums the hugetlb mappings per page size.
	Hugetlb []PageSizeUse `json:"hugetlb"`
	// LargeSharedBaseKB is the size of shared mappings of at least the
	// scan's minimum that are on base pages: memory that could have been
	// on huge pages and costs a page-table entry per base page.
	LargeSharedBaseKB uint64 `json:"large_shared_base_kb"`
	// SysV lists the System V segments attached (shmids).
	SysV     []int64   `json:"sysv_shmids,omitempty"`
	Mappings []Mapping `json:"mappings"`
	// HugeByNode is where its huge pages are, per NUMA node
	// (numa_maps); nil when not read.
	HugeByNode []NodeUse `json:"huge_by_node,omitempty"`
}

// PageSizeUse is the hugetlb memory of one page size in a process.
type PageSizeUse struct {
	PageSizeKB uint64 `json:"page_size_kb"`
	MappedKB   uint64 `json:"mapped_kb"`  // size of the mappings
	FaultedKB  uint64 `json:"faulted_kb"` // backed by pages now
}

// HugetlbMappedKB sums the hugetlb mappings of every page size.
func (p Process) HugetlbMappedKB() uint64 {
	var n uint64
	for _, u := range p.Hugetlb {
		n += u.MappedKB
	}
	return n
}

// ScanOptions select what ScanProcesses reports.
type ScanOptions struct {
	ProcRoot string
	// MinSharedKB: shared mappings at least this large are reported even
	// on base pages (0: 64 MiB).
	MinSharedKB uint64
	// Pids restricts the scan (nil: every process).
	Pids []int
}

// ScanResult is what a scan found and what it could not read.
type ScanResult struct {
	Processes []Process `json:"processes"`
	// Unreadable counts processes whose maps or smaps could not be read
	// (another user's process without root); they may map huge pages too.
	Unreadable int `json:"unreadable"`
}

// ScanProcesses finds the processes that map hugetlb memory, System V
// segments or large shared memory. It reads every process's maps, which is
// cheap, and smaps (which walks the page tables of every mapping and is
// expensive for a large area on base pages) only for the processes maps
// shows to be interesting.
func ScanProcesses(opts ScanOptions) (ScanResult, error) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.MinSharedKB == 0 {
		opts.MinSharedKB = 64 << 10
	}
	pids := opts.Pids
	if pids == nil {
		var err error
		if pids, err = listPids(opts.ProcRoot); err != nil {
			return ScanResult{}, err
		}
	}
	hugefs := HugetlbfsMounts(opts.ProcRoot)
	var res ScanResult
	for _, pid := range pids {
		p, ok, err := scanProcess(opts, hugefs, pid)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // exited meanwhile
		case err != nil:
			res.Unreadable++
			continue
		case ok:
			res.Processes = append(res.Processes, p)
		}
	}
	return res, nil
}

func scanProcess(opts ScanOptions, hugefs []string, pid int) (Process, bool, error) {
	maps, err := ReadMaps(opts.ProcRoot, pid)
	if err != nil {
		return Process{}, false, err
	}
	interesting := false
	for _, m := range maps {
		if candidate(m, hugefs, opts.MinSharedKB) {
			interesting = true
			break
		}
	}
	if !interesting {
		return Process{}, false, nil
	}
	st, err := ReadStatus(opts.ProcRoot, pid)
	if err != nil {
		return Process{}, false, err
	}
	smaps, err := ReadSmaps(opts.ProcRoot, pid)
	if err != nil {
		return Process{}, false, err
	}
	p := Process{Status: st, MemlockBytes: Unlimited}
	if l, err := MemlockLimit(opts.ProcRoot, pid); err == nil {
		p.MemlockBytes = l
	}
	bySize := map[uint64]*PageSizeUse{}
	for _, m := range smaps {
		huge := m.Hugetlb()
		id, sysv := m.SysV()
		large := m.Shared() && m.SizeKB >= opts.MinSharedKB
		if !huge && !sysv && !large {
			continue
		}
		p.Mappings = append(p.Mappings, m)
		if sysv {
			p.SysV = append(p.SysV, id)
		}
		if huge {
			u := bySize[m.KernelPageSizeKB]
			if u == nil {
				u = &PageSizeUse{PageSizeKB: m.KernelPageSizeKB}
				bySize[m.KernelPageSizeKB] = u
			}
			u.MappedKB += m.SizeKB
			u.FaultedKB += m.HugetlbFaultedKB()
		} else if large {
			p.LargeSharedBaseKB += m.SizeKB
		}
	}
	if len(p.Mappings) == 0 {
		return Process{}, false, nil
	}
	for _, u := range bySize {
		p.Hugetlb = append(p.Hugetlb, *u)
	}
	sort.Slice(p.Hugetlb, func(i, j int) bool { return p.Hugetlb[i].PageSizeKB < p.Hugetlb[j].PageSizeKB })
	p.SysV = uniqueInts(p.SysV)
	return p, true, nil
}

// candidate tells from a maps header alone whether smaps is worth reading:
// hugetlb memory shows as /anon_hugepage (MAP_HUGETLB), /SYSV… (System V,
// huge or not), a memfd (MFD_HUGETLB) or a file on a hugetlbfs mount.
func candidate(m Mapping, hugefs []string, minSharedKB uint64) bool {
	switch {
	case strings.HasPrefix(m.Path, "/anon_hugepage"), strings.HasPrefix(m.Path, "/SYSV"),
		strings.HasPrefix(m.Path, "/memfd:"):
		return true
	case m.Shared() && m.SizeKB >= minSharedKB:
		return true
	}
	for _, dir := range hugefs {
		if strings.HasPrefix(m.Path, dir+"/") {
			return true
		}
	}
	return false
}

// HugetlbfsMounts lists the hugetlbfs mount points in procRoot/mounts.
func HugetlbfsMounts(procRoot string) []string {
	f, err := os.Open(filepath.Join(procRoot, "mounts"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "hugetlbfs" {
			out = append(out, strings.TrimSuffix(mounts.Unescape(fields[1]), "/"))
		}
	}
	return out
}

func listPids(procRoot string) ([]int, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

func uniqueInts(v []int64) []int64 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	out := v[:0]
	for i, x := range v {
		if i == 0 || x != v[i-1] {
			out = append(out, x)
		}
	}
	return out
}
