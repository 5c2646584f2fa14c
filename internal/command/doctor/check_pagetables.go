package doctor

import (
	"fmt"
	"strconv"
)

// Page table shares of memory that matter: the seed's incident had page
// tables larger than memory; a few percent is already a cost every
// connection adds to.
const (
	pageTablesWarn    = 0.03
	pageTablesProblem = 0.10
)

func checkPageTables(in *Inputs, top int) Finding {
	f := Finding{ID: "page-tables", Title: "Page tables"}
	mem := in.Snap.Memory
	if mem.MemTotalKB == 0 {
		f.Severity = Warn
		f.Summary = "could not read /proc/meminfo"
		return f
	}
	share := float64(mem.PageTablesKB) / float64(mem.MemTotalKB)
	f.add("PageTables", "%s (%s of memory)", kb(mem.PageTablesKB), pct(float64(mem.PageTablesKB), float64(mem.MemTotalKB)))
	var sum, shmPTE uint64
	for _, p := range in.Procs.List {
		sum += p.PTE
	}
	f.add("VmPTE of all processes", "%s (%d processes)", size(sum), len(in.Procs.List))

	if n := min(top, len(in.Procs.List)); n > 0 {
		t := Table{Title: fmt.Sprintf("top %d processes by page tables (VmPTE)", n),
			Header: []string{"pid", "process", "page tables", "shared resident", "hugetlb"}}
		for _, p := range in.Procs.List[:n] {
			t.Rows = append(t.Rows, []string{strconv.Itoa(p.PID), p.Comm, size(p.PTE), size(p.RSSShmem), size(p.HugetlbPages)})
		}
		f.Tables = append(f.Tables, t)
	}
	// What mapping the shared memory with 4 KiB pages costs: 8 bytes per
	// 4 KiB page per process (a lower bound on their share of VmPTE).
	for _, p := range in.Procs.List {
		shmPTE += p.RSSShmem / 4096 * 8
	}
	if shmPTE > 0 {
		f.note("of that, about %s map shared memory with 4 KiB pages (8 bytes per 4 KiB per process); with 2 MiB huge pages it would be about %s",
			size(shmPTE), size(shmPTE/512))
	}
	f.Summary = fmt.Sprintf("%s, %s of memory", kb(mem.PageTablesKB), pct(float64(mem.PageTablesKB), float64(mem.MemTotalKB)))
	switch {
	case share >= pageTablesProblem:
		f.Severity = Problem
	case share >= pageTablesWarn:
		f.Severity = Warn
	default:
		return f
	}
	f.Why = "Page tables are unswappable kernel memory that every process mapping a large shared area with 4 KiB pages pays in full: the seed's 100 GiB SGA with 1000 processes needed 200 GiB of them, and 400 KiB in all with 2 MiB pages."
	f.Fix = []string{"put the shared area on huge pages: see the \"Large shared memory\" and \"Huge page pools\" findings for vm.nr_hugepages and memlock"}
	return f
}
