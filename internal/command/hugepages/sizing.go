package hugepages

import (
	"fmt"
	"math/bits"

	"github.com/memtrace/memtrace/internal/present/text"
)

// Sizing is a recommended hugetlb pool for some shared memory, with the
// memlock limit that goes with it.
type Sizing struct {
	PageSizeKB uint64 `json:"page_size_kb"`
	// Segments and Bytes are what was counted (segments of at least one
	// huge page; for a plan, one "segment" of the planned size).
	Segments int    `json:"segments"`
	Bytes    uint64 `json:"bytes"`
	// NeededPages is what the kernel takes: each segment rounded up to
	// whole pages.
	NeededPages uint64 `json:"needed_pages"`
	// NrHugepages is the recommended vm.nr_hugepages, NeededPages plus
	// the safety margin described where it is computed.
	NrHugepages uint64 `json:"nr_hugepages"`
	// MemlockKB is the memlock limit for /etc/security/limits.conf (kB):
	// the pool in bytes, slightly above the shared memory as the seed
	// advises. SHM_HUGETLB segments are charged against it for users
	// outside vm.hugetlb_shm_group.
	MemlockKB uint64 `json:"memlock_kb"`
}

// SizeForSegments reproduces the sizing script of the Oracle huge page
// notes (hugepages_settings.sh) over segment sizes in bytes: start from one
// page, and for every segment of at least one huge page add its size in
// whole pages (rounded down) plus one. That is each segment rounded up,
// plus one page per exact multiple and one for the whole pool: the margin
// the script has always given, kept so that its users get the number they
// know. Segments smaller than one huge page are skipped as the script does:
// they are control segments (PostgreSQL's 56-byte header) that nobody puts
// on huge pages.
func SizeForSegments(sizes []uint64, pageSizeKB uint64) Sizing {
	s := Sizing{PageSizeKB: pageSizeKB}
	page := pageSizeKB << 10
	if page == 0 {
		return s
	}
	s.NrHugepages = 1
	for _, size := range sizes {
		whole := size / page
		if whole == 0 {
			continue
		}
		s.Segments++
		s.Bytes += size
		s.NeededPages += ceilDiv(size, page)
		s.NrHugepages += whole + 1
	}
	if s.Segments == 0 {
		s.NrHugepages = 0 // nothing to size: recommend no pool
	}
	s.MemlockKB = s.NrHugepages * pageSizeKB
	return s
}

// PlanProcessOverheadBytes is what the seed's pre-installation estimate
// adds per database process to the shared memory: 20 KiB.
const PlanProcessOverheadBytes = 20 << 10

// SizeForPlan sizes the pool before the database runs, as the seed does:
// (shared memory + 20 KiB × processes) / page size, rounded up.
func SizeForPlan(bytes uint64, processes int, pageSizeKB uint64) Sizing {
	s := Sizing{PageSizeKB: pageSizeKB, Segments: 1}
	page := pageSizeKB << 10
	if page == 0 {
		return s
	}
	if processes < 0 {
		processes = 0
	}
	s.Bytes = bytes + uint64(processes)*PlanProcessOverheadBytes
	s.NeededPages = ceilDiv(s.Bytes, page)
	s.NrHugepages = s.NeededPages
	s.MemlockKB = s.NrHugepages * pageSizeKB
	return s
}

// PageTableEntryBytes is the size of one page-table entry on 64-bit
// machines, at every level.
const PageTableEntryBytes = 8

// PageTableCost is what mapping Bytes of shared memory in Processes
// processes costs in page tables, with base pages and with huge pages.
// Each process has its own page tables for a shared mapping; the huge page
// totals are an upper bound, since x86 shares the page-table pages of
// shared hugetlb mappings that cover whole aligned gigabytes between
// processes.
type PageTableCost struct {
	Bytes      uint64 `json:"bytes"`
	Processes  int    `json:"processes"`
	BasePageKB uint64 `json:"base_page_kb"`
	PageSizeKB uint64 `json:"huge_page_size_kb"`

	BaseEntries         uint64 `json:"base_entries_per_process"`
	BaseBytesPerProcess uint64 `json:"base_bytes_per_process"`
	BaseBytesTotal      uint64 `json:"base_bytes_total"`
	HugeEntries         uint64 `json:"huge_entries_per_process"`
	HugeBytesPerProcess uint64 `json:"huge_bytes_per_process"`
	HugeBytesTotal      uint64 `json:"huge_bytes_total"`
	SavedBytesTotal     uint64 `json:"saved_bytes_total"`
}

// CostOfPageTables computes the seed's arithmetic: one 8-byte entry per
// page, per process that maps the memory.
func CostOfPageTables(bytes uint64, processes int, basePageKB, hugePageKB uint64) PageTableCost {
	if processes < 0 {
		processes = 0
	}
	c := PageTableCost{Bytes: bytes, Processes: processes, BasePageKB: basePageKB, PageSizeKB: hugePageKB}
	if basePageKB > 0 {
		c.BaseEntries = ceilDiv(bytes, basePageKB<<10)
	}
	if hugePageKB > 0 {
		c.HugeEntries = ceilDiv(bytes, hugePageKB<<10)
	}
	n := uint64(processes)
	c.BaseBytesPerProcess = c.BaseEntries * PageTableEntryBytes
	c.HugeBytesPerProcess = c.HugeEntries * PageTableEntryBytes
	c.BaseBytesTotal = c.BaseBytesPerProcess * n
	c.HugeBytesTotal = c.HugeBytesPerProcess * n
	c.SavedBytesTotal = sub(c.BaseBytesTotal, c.HugeBytesTotal)
	return c
}

// CheckPlan reports whether the figures of a plan for bytes of shared
// memory in processes processes fit in 64 bits: the pool with its
// per-process overhead, and the page tables of every process on base pages
// (the largest figure). A plan beyond them is more than 16 EiB, a typing
// error rather than a host, and would otherwise wrap to a small, plausible
// and wrong recommendation.
func CheckPlan(bytes uint64, processes int) error {
	if processes < 0 {
		return fmt.Errorf("%d processes", processes)
	}
	n := uint64(processes)
	hi, overhead := bits.Mul64(n, PlanProcessOverheadBytes)
	_, carry := bits.Add64(bytes, overhead, 0)
	hi2, perProcess := bits.Mul64(ceilDiv(bytes, BasePageKB<<10), PageTableEntryBytes)
	hi3, _ := bits.Mul64(perProcess, n)
	if hi != 0 || carry != 0 || hi2 != 0 || hi3 != 0 {
		return fmt.Errorf("%s of shared memory in %d processes needs more than 16 EiB of pool or page tables", text.Bytes(bytes, text.TrimZero), processes)
	}
	return nil
}

// ceilDiv is a/b rounded up, without the overflow of (a+b-1)/b.
func ceilDiv(a, b uint64) uint64 {
	if b == 0 {
		return 0
	}
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
