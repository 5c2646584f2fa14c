package sysstate

import (
	"errors"
	"path/filepath"

	"github.com/prometheus/procfs"
)

// Memory is the part of /proc/meminfo these incidents need. Sizes are in
// kB as the kernel prints them; the HugePages* counts are pages of the
// default huge page size (HugepageSizeKB).
type Memory struct {
	MemTotalKB     uint64 `json:"mem_total_kb"`
	MemFreeKB      uint64 `json:"mem_free_kb"`
	MemAvailableKB uint64 `json:"mem_available_kb"`
	// PageTablesKB grows with every process that maps a big shared area
	// with 4 KiB pages: the cost huge pages remove.
	PageTablesKB   uint64 `json:"page_tables_kb"`
	HugePagesTotal uint64 `json:"hugepages_total"`
	HugePagesFree  uint64 `json:"hugepages_free"`
	HugePagesRsvd  uint64 `json:"hugepages_rsvd"`
	HugePagesSurp  uint64 `json:"hugepages_surp"`
	HugepageSizeKB uint64 `json:"hugepage_size_kb"`
	HugetlbKB      uint64 `json:"hugetlb_kb"` // all pools, every size
}

// DefaultPool is the default-size huge page pool as meminfo shows it, for
// the same arithmetic as the sysfs pools.
func (m Memory) DefaultPool() HugePool {
	return HugePool{
		PageSizeKB: m.HugepageSizeKB,
		Total:      m.HugePagesTotal,
		Free:       m.HugePagesFree,
		Reserved:   m.HugePagesRsvd,
		Surplus:    m.HugePagesSurp,
	}
}

// readMemory reads /proc/meminfo with procfs. Lines the kernel leaves out
// (HugePages_* without CONFIG_HUGETLB_PAGE) read as 0; MemTotal missing
// means this is not a meminfo file.
func readMemory(fs procfs.FS, procRoot string) (Memory, error) {
	path := filepath.Join(procRoot, "meminfo")
	mi, err := fs.Meminfo()
	if err != nil {
		return Memory{}, fileError(path, err)
	}
	if mi.MemTotal == nil {
		return Memory{}, fileError(path, errors.New("no MemTotal line"))
	}
	v := func(p *uint64) uint64 {
		if p == nil {
			return 0
		}
		return *p
	}
	return Memory{
		MemTotalKB:     v(mi.MemTotal),
		MemFreeKB:      v(mi.MemFree),
		MemAvailableKB: v(mi.MemAvailable),
		PageTablesKB:   v(mi.PageTables),
		HugePagesTotal: v(mi.HugePagesTotal),
		HugePagesFree:  v(mi.HugePagesFree),
		HugePagesRsvd:  v(mi.HugePagesRsvd),
		HugePagesSurp:  v(mi.HugePagesSurp),
		HugepageSizeKB: v(mi.Hugepagesize),
		HugetlbKB:      v(mi.Hugetlb),
	}, nil
}
