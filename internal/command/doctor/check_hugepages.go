package doctor

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// maxSegmentRows bounds the segment table.
const maxSegmentRows = 10

func checkHugePools(in *Inputs) Finding {
	f := Finding{ID: "hugepages", Title: "Huge page pools and SysV shared memory"}
	mem := in.Snap.Memory
	pools := in.Snap.HugePools
	if len(pools) == 0 && mem.HugepageSizeKB > 0 {
		pools = []sysstate.HugePool{mem.DefaultPool()} // sysfs unreadable: meminfo's default pool
	}
	hp := mem.HugepageSizeKB * 1024 // default huge page size, what SHM_HUGETLB uses
	if hp == 0 && len(pools) > 0 {
		hp = pools[0].PageSizeKB * 1024
	}

	var totalPages, promisedBytes, neverBytes uint64
	t := Table{Header: []string{"page size", "total", "free", "reserved", "surplus", "in use", "in use or promised", "never used"}}
	for _, p := range pools {
		totalPages += p.Total
		promisedBytes += p.InUseOrPromised() * p.PageSizeKB * 1024
		neverBytes += p.NeverUsedBytes()
		t.Rows = append(t.Rows, []string{
			kb(p.PageSizeKB), u(p.Total), u(p.Free), u(p.Reserved), u(p.Surplus), u(p.InUse()), u(p.InUseOrPromised()),
			fmt.Sprintf("%d (%s)", p.NeverUsed(), size(p.NeverUsedBytes())),
		})
		if p.Surplus > 0 {
			f.note("%d surplus %s pages beyond nr_hugepages (nr_overcommit_hugepages %d): taken from the buddy allocator on demand, they may fail to appear under fragmentation", p.Surplus, kb(p.PageSizeKB), p.Overcommit)
		}
	}
	if len(pools) > 0 {
		f.Tables = append(f.Tables, t)
	}
	if g := in.Snap.Sysctl.HugetlbShmGroup; g > 0 {
		f.add("vm.hugetlb_shm_group", "%d (members may create SHM_HUGETLB segments without CAP_IPC_LOCK)", g)
	}

	// SysV segments, largest first, sized as `memtrace hugepages` does.
	segs := slices.Clone(in.Shm)
	slices.SortFunc(segs, func(a, b hugepages.Segment) int { return cmpDesc(a.Size, b.Size) })
	var segBytes uint64
	var sizes []uint64
	st := Table{Title: "SysV shared memory segments (/proc/sysvipc/shm), largest first",
		Header: []string{"shmid", "key", "owner", "size", "attached", "creator pid"}}
	for i, s := range segs {
		segBytes += s.Size
		sizes = append(sizes, s.Size)
		if i < maxSegmentRows && s.Size >= 1<<20 {
			st.Rows = append(st.Rows, []string{
				strconv.FormatInt(s.ShmID, 10), fmt.Sprintf("0x%08x", uint32(s.Key)), in.user(uint64(s.UID)),
				size(s.Size), u(s.Nattch), strconv.Itoa(s.Cpid),
			})
		}
	}
	sizing := hugepages.SizeForSegments(sizes, hp/1024)
	needPages := sizing.NrHugepages
	needBytes := sizing.NeededPages * hp
	if len(st.Rows) > 0 {
		f.Tables = append(f.Tables, st)
	}
	f.add("SysV segments", "%d, %s in all", len(segs), size(segBytes))
	if needBytes > 0 {
		f.add("huge pages the segments need", "%d of %s (as memtrace hugepages and hugepages_settings.sh count: each segment's whole pages plus one, plus one)", needPages, size(hp))
	}
	f.note("in use = total − free; in use or promised = total − free + reserved; never used = free − reserved (free counts reserved pages too)")

	notHuge := uint64(0)
	if needBytes > promisedBytes {
		notHuge = needBytes - promisedBytes
	}
	wasteLimit := mem.MemTotalKB * 1024 / 100 // 1% of memory
	switch {
	case notHuge > 0 && totalPages > 0:
		f.Severity = Problem
		f.Summary = fmt.Sprintf("at least %s of SysV shared memory is on 4 KiB pages: the segments need %d huge pages, only %s is in use or promised",
			size(notHuge), needPages, size(promisedBytes))
		f.Why = "A segment larger than the pool falls back to 4 KiB pages without a word (Oracle before 11.2.0.3 did so silently), and then every process that maps it pays page tables while the pool's pages serve nobody."
	case notHuge > 0:
		f.Severity = Warn
		f.Summary = fmt.Sprintf("%s of SysV shared memory on 4 KiB pages and no huge page pool", size(notHuge))
		f.Why = "With 4 KiB pages every process mapping a segment pays 8 bytes of page table per 4 KiB of it (the seed: a 100 GiB SGA and 1000 processes cost 200 GiB); huge pages shrink that 512 times and cannot be swapped."
	case neverBytes >= wasteLimit && neverBytes > 0:
		f.Severity = Warn
		f.Summary = fmt.Sprintf("%s of huge pages are neither used nor promised", size(neverBytes))
		f.Why = "Pool pages serve only hugetlb mappings: pages nobody uses or reserved are memory lost to the page cache and everything else (unless the database that uses them is stopped right now)."
	case totalPages > 0:
		f.Summary = fmt.Sprintf("%d huge page%s, %s in use or promised", totalPages, plural(totalPages), size(promisedBytes))
	default:
		f.Summary = "no huge page pool, and no SysV segment that would need one"
	}
	addHugeNUMA(&f, in)
	if notHuge > 0 {
		plan := planHugePages(in)
		f.Fix = append(f.Fix,
			plan.line(),
			fmt.Sprintf("echo 'vm.nr_hugepages = %d' > /etc/sysctl.d/90-memtrace-hugepages.conf", plan.total),
			"restart the database so it creates its segments with SHM_HUGETLB (Oracle: USE_LARGE_PAGES=ONLY and no MEMORY_TARGET, which cannot use hugetlbfs)")
	} else if f.Severity == Warn && hp > 0 {
		// Keep what is used or promised in the default pool (which covers
		// the segments, or notHuge would be set).
		for _, p := range pools {
			if p.PageSizeKB*1024 == hp && p.NeverUsed() > 0 {
				f.Fix = append(f.Fix, fmt.Sprintf("sysctl -w vm.nr_hugepages=%d   # what is used or promised now; frees %s",
					p.InUseOrPromised(), size(p.NeverUsedBytes())))
			}
		}
	}
	return f
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

// user names a uid, or prints the number.
func (in *Inputs) user(uid uint64) string {
	if n, ok := in.Users[uid]; ok {
		return n
	}
	return strconv.FormatUint(uid, 10)
}
