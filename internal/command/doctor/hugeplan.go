package doctor

import (
	"fmt"
	"slices"
	"strings"

	"github.com/memtrace/memtrace/internal/command/hugepages"
)

// hugePlan is the one vm.nr_hugepages both huge page findings suggest:
// the SysV segments sized as `memtrace hugepages` does
// (hugepages.SizeForSegments, Oracle's hugepages_settings.sh), and, for
// users owning no such segment (PostgreSQL maps its buffers with mmap),
// their largest shared area the same way.
type hugePlan struct {
	pageBytes uint64
	sysv      uint64 // pages for the SysV segments, 0 if none
	others    map[string]uint64
	total     uint64
}

func planHugePages(in *Inputs) hugePlan {
	p := hugePlan{pageBytes: in.Snap.Memory.HugepageSizeKB * 1024, others: map[string]uint64{}}
	if p.pageBytes == 0 {
		return p
	}
	owners := map[uint64]bool{}
	var sizes []uint64
	for _, s := range in.Shm {
		sizes = append(sizes, s.Size)
		if s.Size >= p.pageBytes {
			owners[uint64(s.UID)] = true
		}
	}
	p.sysv = hugepages.SizeForSegments(sizes, in.Snap.Memory.HugepageSizeKB).NrHugepages
	threshold := largeShm(in.Snap.Memory.MemTotalKB)
	for _, pr := range in.Procs.List {
		if owners[pr.UID] || pr.RSSShmem < threshold || pr.HugetlbPages >= pr.RSSShmem {
			continue
		}
		user := in.user(pr.UID)
		p.others[user] = max(p.others[user], (pr.RSSShmem+p.pageBytes-1)/p.pageBytes+1)
	}
	p.total = p.sysv
	for _, n := range p.others {
		p.total += n
	}
	return p
}

// line is the sysctl line with what it is made of.
func (p hugePlan) line() string {
	var parts []string
	if p.sysv > 0 {
		parts = append(parts, fmt.Sprintf("SysV segments %d", p.sysv))
	}
	users := make([]string, 0, len(p.others))
	for u := range p.others {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		parts = append(parts, fmt.Sprintf("%s's shared memory %d", u, p.others[u]))
	}
	return fmt.Sprintf("sysctl -w vm.nr_hugepages=%d   # %s pages: %s", p.total, size(p.pageBytes), strings.Join(parts, " + "))
}
