package hugepages

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Options configure Collect.
type Options struct {
	ProcRoot, SysRoot string
	// MinSharedBytes: shared mappings at least this large are reported on
	// base pages too (0: 64 MiB).
	MinSharedBytes uint64
	// PlanBytes, if set, sizes a pool for a database not running yet,
	// with PlanProcesses processes.
	PlanBytes     uint64
	PlanProcesses int
}

// MaxProcesses is the most processes Linux can have (PID_MAX_LIMIT on
// 64-bit): a plan for more is a typing error.
const MaxProcesses = 4 << 20

// Validate checks the options before anything is read: the one place of
// the hugepages command's rules, which name the flags that set them.
func (o Options) Validate() error {
	switch {
	case o.PlanProcesses < 0:
		return errors.New("--processes must not be negative")
	case o.PlanProcesses > MaxProcesses:
		return fmt.Errorf("--processes %d: Linux runs at most %d processes", o.PlanProcesses, MaxProcesses)
	}
	if err := CheckPlan(o.PlanBytes, o.PlanProcesses); err != nil {
		return fmt.Errorf("--plan: %w", err)
	}
	return nil
}

// Report is the huge-page state of a host.
type Report struct {
	Time              time.Time `json:"time"`
	DefaultPageSizeKB uint64    `json:"default_page_size_kb"`
	// MinSharedBytes is the smallest shared mapping on base pages listed.
	MinSharedBytes  uint64              `json:"min_shared_bytes"`
	Pools           []sysstate.HugePool `json:"pools"`
	NrHugepages     int64               `json:"nr_hugepages"`
	HugetlbShmGroup int64               `json:"hugetlb_shm_group"`
	// ShmMax and ShmAll bound System V segments (bytes, pages).
	ShmMax uint64 `json:"shmmax"`
	ShmAll uint64 `json:"shmall"`

	Processes  []Process    `json:"processes"`
	Unreadable int          `json:"unreadable_processes"`
	Segments   []SegmentUse `json:"sysv_segments"`

	// Sizing is the recommended default-size pool for the current System
	// V segments; Plan the one for PlanBytes.
	Sizing Sizing       `json:"sizing"`
	Plan   *PlanReport  `json:"plan,omitempty"`
	Tables PageTableUse `json:"page_tables"`

	// NodePools are the pools per NUMA node; NodeShortages the page
	// sizes whose pool is exhausted on a node while another has pages.
	NodePools     []sysstate.NodePool     `json:"node_pools"`
	NodeShortages []sysstate.NodeShortage `json:"node_shortages,omitempty"`
	// RemoteHuge are processes with huge pages on nodes none of the CPUs
	// they may run on belong to.
	RemoteHuge []RemoteHuge `json:"remote_huge,omitempty"`
	// CgroupLimits are the hugetlb cgroups that limit a page size.
	CgroupLimits []hugetlbcg.Limits `json:"hugetlb_cgroup_limits,omitempty"`
	Errors       []string           `json:"errors,omitempty"`
}

// SegmentUse is a System V segment with what the processes attaching it
// show about its pages.
type SegmentUse struct {
	Segment
	// OnHugePages is nil when no attaching process could be read (or none
	// attaches it): /proc/sysvipc/shm does not say.
	OnHugePages *bool      `json:"on_huge_pages"`
	PageSizeKB  uint64     `json:"page_size_kb,omitempty"`
	Attachers   []Attacher `json:"attachers"`
}

// Attacher is a process that has a segment mapped.
type Attacher struct {
	Pid  int    `json:"pid"`
	Comm string `json:"comm"`
}

// PlanReport sizes the pool and shows the page-table cost for a planned
// shared memory size.
type PlanReport struct {
	Sizing     Sizing        `json:"sizing"`
	PageTables PageTableCost `json:"page_tables"`
}

// PageTableUse compares the page tables measured now with what the shared
// memory of the listed processes costs on base and on huge pages.
type PageTableUse struct {
	// TotalKB is PageTables in /proc/meminfo: every process.
	TotalKB uint64 `json:"total_kb"`
	// ListedKB sums VmPTE of the processes listed.
	ListedKB uint64 `json:"listed_kb"`
	// SharedBytes is the shared memory the listed processes map (each
	// mapping counted in every process that maps it).
	SharedBytes uint64              `json:"shared_bytes"`
	AsBasePages uint64              `json:"as_base_pages_bytes"`
	AsHugePages uint64              `json:"as_huge_pages_bytes"`
	PerProcess  []ProcessPageTables `json:"per_process"`
}

// ProcessPageTables is one process's measured and computed page tables.
type ProcessPageTables struct {
	Pid         int    `json:"pid"`
	VmPTEKB     uint64 `json:"vm_pte_kb"`
	SharedBytes uint64 `json:"shared_bytes"`
	AsBasePages uint64 `json:"as_base_pages_bytes"`
	AsHugePages uint64 `json:"as_huge_pages_bytes"`
}

// Collect reads the pools, the processes and the System V segments.
// Parts that cannot be read are named in Errors.
func Collect(opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	snap := sysstate.Take(opts.ProcRoot, opts.SysRoot)
	r := &Report{
		Time:              snap.Time,
		DefaultPageSizeKB: snap.Memory.HugepageSizeKB,
		Pools:             snap.HugePools,
		NrHugepages:       snap.Sysctl.NrHugepages,
		HugetlbShmGroup:   snap.Sysctl.HugetlbShmGroup,
		Tables:            PageTableUse{TotalKB: snap.Memory.PageTablesKB},
	}
	// The snapshot reads more than this report shows (zones, vmstat);
	// only the errors of the parts used here concern its reader.
	for _, e := range snap.Errors {
		if strings.Contains(e, "meminfo") || strings.Contains(e, "hugepages") || strings.Contains(e, "hugetlb_shm_group") {
			r.Errors = append(r.Errors, e)
		}
	}
	if r.DefaultPageSizeKB == 0 {
		r.Errors = append(r.Errors, "no Hugepagesize in meminfo: this kernel has no hugetlb support")
	}
	r.ShmMax, _ = readSysctlUint(opts.ProcRoot, "kernel/shmmax")
	r.ShmAll, _ = readSysctlUint(opts.ProcRoot, "kernel/shmall")

	if opts.MinSharedBytes == 0 {
		opts.MinSharedBytes = 64 << 20
	}
	r.MinSharedBytes = opts.MinSharedBytes
	minKB := max(opts.MinSharedBytes>>10, 1)
	scan, err := ScanProcesses(ScanOptions{ProcRoot: opts.ProcRoot, MinSharedKB: minKB})
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	r.Processes, r.Unreadable = scan.Processes, scan.Unreadable
	if r.Processes == nil {
		r.Processes = []Process{}
	}

	segs, err := ReadSysVShm(opts.ProcRoot)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	r.Segments = AttachSegments(segs, r.Processes)

	var sizes []uint64
	for _, s := range segs {
		sizes = append(sizes, s.Size)
	}
	r.Sizing = SizeForSegments(sizes, r.DefaultPageSizeKB)
	if opts.PlanBytes > 0 {
		r.Plan = &PlanReport{
			Sizing:     SizeForPlan(opts.PlanBytes, opts.PlanProcesses, r.DefaultPageSizeKB),
			PageTables: CostOfPageTables(opts.PlanBytes, opts.PlanProcesses, BasePageKB, r.DefaultPageSizeKB),
		}
	}
	r.Tables = pageTableUse(r.Tables.TotalKB, r.Processes, r.DefaultPageSizeKB)
	r.collectPlacement(opts)
	return r, nil
}

// AttachSegments joins segments with the processes that map them. A
// segment is on huge pages when an attacher's smaps shows a hugetlb
// mapping for it.
func AttachSegments(segs []Segment, procs []Process) []SegmentUse {
	out := make([]SegmentUse, 0, len(segs))
	for _, s := range segs {
		u := SegmentUse{Segment: s, Attachers: []Attacher{}}
		for _, p := range procs {
			for _, m := range p.Mappings {
				id, ok := m.SysV()
				if !ok || id != s.ShmID {
					continue
				}
				if len(u.Attachers) == 0 || u.Attachers[len(u.Attachers)-1].Pid != p.Pid {
					u.Attachers = append(u.Attachers, Attacher{Pid: p.Pid, Comm: p.Comm})
				}
				if m.Detailed {
					huge := m.Hugetlb()
					u.OnHugePages = &huge
					u.PageSizeKB = m.KernelPageSizeKB
				}
			}
		}
		out = append(out, u)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ShmID < out[j].ShmID })
	return out
}

func pageTableUse(totalKB uint64, procs []Process, hugeKB uint64) PageTableUse {
	u := PageTableUse{TotalKB: totalKB, PerProcess: []ProcessPageTables{}}
	for _, p := range procs {
		var kb uint64
		for _, m := range p.Mappings {
			if m.Shared() {
				kb += m.SizeKB
			}
		}
		c := CostOfPageTables(kb<<10, 1, BasePageKB, hugeKB)
		u.ListedKB += p.VmPTEKB
		u.SharedBytes += kb << 10
		u.AsBasePages += c.BaseBytesTotal
		u.AsHugePages += c.HugeBytesTotal
		u.PerProcess = append(u.PerProcess, ProcessPageTables{
			Pid: p.Pid, VmPTEKB: p.VmPTEKB, SharedBytes: kb << 10,
			AsBasePages: c.BaseBytesTotal, AsHugePages: c.HugeBytesTotal,
		})
	}
	return u
}

func readSysctlUint(procRoot, name string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "sys", name))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}
