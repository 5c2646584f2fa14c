package event

import (
	"fmt"
	"strconv"
	"strings"
)

// HugeFault is one fault on a hugetlb mapping that got no page: the
// process gets SIGBUS (or, for VM_FAULT_OOM, the fault is retried). The
// mapping had been made; the page was missing at first touch.
type HugeFault struct {
	// Source is how it was seen: "sigbus" (the SIGBUS the fault ended in)
	// or "fault_return" (hugetlb_fault's result, where fexit exists: also
	// faults made by the kernel for the process, which send no signal).
	Source string `json:"source"`
	// Result is "SIGBUS" for a signal, else VM_FAULT_SIGBUS or VM_FAULT_OOM.
	Result  string `json:"result"`
	Address Hex    `json:"address"`
	// SignalResult is the kernel's result of generating the signal
	// (0: delivered); absent for a fault return.
	SignalResult *int32      `json:"signal_result,omitempty"`
	Mapping      HugeMapping `json:"mapping"`
	// Reservation is the mapping's claim on the pool: "reserved" (pages
	// reserved at mmap/shmget), "noreserve" (MAP_NORESERVE or
	// SHM_NORESERVE: none), "not_owner" (a private mapping inherited
	// across fork: the reservation stays with the parent, a copy on write
	// needs a free page), "unmapped_by_owner" (the parent copied the page
	// on write with the pool empty and took it from this process).
	Reservation string `json:"reservation"`
	// Pool is the pool of the mapping's page size just after the failure.
	Pool HugeFaultPool `json:"pool"`
	// FSLimit is the hugetlbfs mount's size limit (size=), in pages, when
	// the mapping's mount has one.
	FSLimit *HugeFSLimit `json:"hugetlbfs_limit,omitempty"`
	// Cgroup is the task's hugetlb cgroup, when the controller exists.
	Cgroup *HugetlbCgroup `json:"hugetlb_cgroup,omitempty"`
	// Node is the NUMA node of the CPU that faulted.
	Node int32 `json:"node"`
	// Cause is what refused the page: "hugetlb_cgroup_limit",
	// "hugetlb_cgroup_rsvd_limit", "hugetlbfs_limit", "pool_empty",
	// "unmapped_by_owner" or "unknown"; Explanation says it in a sentence.
	Cause       string `json:"cause"`
	Explanation string `json:"explanation"`
}

// HugeMapping is the VMA a hugetlb fault hit.
type HugeMapping struct {
	Start    Hex    `json:"start"`
	End      Hex    `json:"end"`
	Size     uint64 `json:"size"`
	PageSize uint64 `json:"page_size"` // 0: unknown
	Flags    Hex    `json:"vm_flags"`
	// FlagNames decodes Flags (VM_READ|VM_WRITE|VM_SHARED|...).
	FlagNames string `json:"vm_flag_names"`
	Shared    bool   `json:"shared"`
	Offset    uint64 `json:"offset"` // bytes into the file
	// File is the mapping's file: "anon_hugepage" for mmap(MAP_HUGETLB),
	// "SYSV<key>" for a System V segment, else the hugetlbfs file's name.
	File  string `json:"file,omitempty"`
	Inode uint64 `json:"inode,omitempty"`
}

// HugeFaultPool is a huge page pool of one size, in pages, with the free
// pages of nodes 0-7.
type HugeFaultPool struct {
	Total      uint64   `json:"total"`
	Free       uint64   `json:"free"`
	Reserved   uint64   `json:"reserved"`
	Surplus    uint64   `json:"surplus"`
	Overcommit uint64   `json:"overcommit"`
	NodeFree   []uint32 `json:"node_free,omitempty"`
}

// Available is what a fault without a reservation can take: the free
// pages less those promised to reservations.
func (p HugeFaultPool) Available() int64 { return int64(p.Free) - int64(p.Reserved) }

// HugeFSLimit is a hugetlbfs mount's size= limit, in huge pages.
type HugeFSLimit struct {
	Max  int64 `json:"max"`
	Used int64 `json:"used"`
}

// HugetlbCgroup is a hugetlb cgroup's limits for one page size.
type HugetlbCgroup struct {
	ID   uint64 `json:"id"`
	Path string `json:"path,omitempty"`
	// AtFault: the kernel's counters read just after the failure (nil
	// when they could not be read).
	AtFault *HugetlbCounters `json:"at_fault,omitempty"`
	// Files: the controller's files, read when the event arrived (nil
	// when the cgroup or its files were gone).
	Files *HugetlbCounters `json:"files,omitempty"`
}

// HugetlbCounters are a hugetlb cgroup's counters for one page size, in
// bytes; a nil limit is no limit.
type HugetlbCounters struct {
	Usage     uint64  `json:"usage"`
	Limit     *uint64 `json:"limit"`
	RsvdUsage *uint64 `json:"rsvd_usage,omitempty"`
	RsvdLimit *uint64 `json:"rsvd_limit,omitempty"`
	// LimitFile names the limit as the hierarchy spells it
	// ("hugetlb.2MB.max", "hugetlb.2MB.limit_in_bytes"); RsvdLimitFile
	// likewise (.rsvd.max, .rsvd.limit_in_bytes).
	LimitFile     string `json:"limit_file,omitempty"`
	RsvdLimitFile string `json:"rsvd_limit_file,omitempty"`
	// Failures counts refused charges (v2 events "max", v1 failcnt);
	// nil where not read.
	Failures *uint64 `json:"failures,omitempty"`
}

// Refuses reports whether a charge of n bytes on top of usage exceeds
// limit (nil: unlimited).
func refuses(usage uint64, limit *uint64, n uint64) bool {
	return limit != nil && usage+n > *limit
}

// Diagnose sets Cause and Explanation from the state read at the failure,
// in the order the kernel checks it (alloc_hugetlb_folio): the hugetlbfs
// size limit, the cgroup's reservation counter, its fault counter, then
// the pool.
func (f *HugeFault) Diagnose() {
	m := &f.Mapping
	ps := m.PageSize
	reserved := f.Reservation == "reserved"
	var c *HugetlbCounters
	cgPath := ""
	if f.Cgroup != nil {
		c = f.Cgroup.AtFault
		if c == nil {
			c = f.Cgroup.Files
		}
		cgPath = f.Cgroup.Path
		if cgPath == "" {
			cgPath = "id " + strconv.FormatUint(f.Cgroup.ID, 10)
		}
	}
	// The kernel's counters carry no file names; the files read when the
	// event arrived do.
	limitName := func(file, fallback string) string {
		if file != "" {
			return file
		}
		if f.Cgroup != nil && f.Cgroup.Files != nil {
			if fallback == "limit" && f.Cgroup.Files.LimitFile != "" {
				return f.Cgroup.Files.LimitFile
			}
			if fallback == "rsvd limit" && f.Cgroup.Files.RsvdLimitFile != "" {
				return f.Cgroup.Files.RsvdLimitFile
			}
		}
		return fallback
	}
	switch {
	case f.Reservation == "unmapped_by_owner":
		f.Cause = "unmapped_by_owner"
		f.Explanation = "a private huge page mapping inherited across fork: the parent, which owns the reservation, " +
			"copied the page on write when the pool had no page for this process, and the kernel took it from here"
	case !reserved && f.FSLimit != nil && f.FSLimit.Used >= f.FSLimit.Max:
		f.Cause = "hugetlbfs_limit"
		f.Explanation = fmt.Sprintf("the hugetlbfs mount's size limit is reached: %d of %d pages used", f.FSLimit.Used, f.FSLimit.Max)
	case ps > 0 && c != nil && !reserved && c.RsvdUsage != nil && refuses(*c.RsvdUsage, c.RsvdLimit, ps):
		f.Cause = "hugetlb_cgroup_rsvd_limit"
		f.Explanation = fmt.Sprintf("the hugetlb cgroup %s allows %s of %s pages reserved (%s) and %s were: a page faulted without a reservation could not be charged",
			cgPath, sizeText(*c.RsvdLimit), sizeText(ps), limitName(c.RsvdLimitFile, "rsvd limit"), sizeText(*c.RsvdUsage))
	case ps > 0 && c != nil && refuses(c.Usage, c.Limit, ps):
		f.Cause = "hugetlb_cgroup_limit"
		f.Explanation = fmt.Sprintf("the hugetlb cgroup %s allows %s of %s pages (%s) and %s were in use: the fault could not be charged (the limit counts faulted pages, not reservations)",
			cgPath, sizeText(*c.Limit), sizeText(ps), limitName(c.LimitFile, "limit"), sizeText(c.Usage))
	case !reserved && f.Pool.Available() < 1 && f.Pool.Surplus >= f.Pool.Overcommit:
		f.Cause = "pool_empty"
		f.Explanation = fmt.Sprintf("the %s pool had no page for a fault without a reservation (%s): %d pages, %d free of which %d reserved for others, no overcommit left",
			sizeText(ps), reservationText(f.Reservation), f.Pool.Total, f.Pool.Free, f.Pool.Reserved)
	default:
		f.Cause = "unknown"
		f.Explanation = fmt.Sprintf("no limit found refusing it: reservation %s, the %s pool had %d pages, %d free, %d reserved",
			f.Reservation, sizeText(ps), f.Pool.Total, f.Pool.Free, f.Pool.Reserved)
		if nodes := nodeFreeText(f.Pool.NodeFree); nodes != "" {
			f.Explanation += "; free per node " + nodes + " (a memory policy or cpuset may exclude the nodes with free pages)"
		}
	}
}

func reservationText(r string) string {
	switch r {
	case "noreserve":
		return "mapped with MAP_NORESERVE"
	case "not_owner":
		return "a private mapping copied on write after fork; the reservation stays with the parent"
	}
	return r
}

func nodeFreeText(nodes []uint32) string {
	var parts []string
	for i, n := range nodes {
		parts = append(parts, fmt.Sprintf("node%d=%d", i, n))
	}
	return strings.Join(parts, " ")
}

// sizeText writes a byte size in binary units, exact when it is a whole
// number of them ("2 MiB", "1 GiB", "4 KiB").
func sizeText(b uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && b%1024 == 0 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return strconv.FormatUint(b, 10) + " " + units[i]
}
