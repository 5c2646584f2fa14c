package doctor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// shmUser is the processes of one name that map large shared memory.
type shmUser struct {
	comm     string
	uid      uint64
	procs    int
	shm      uint64 // largest RssShmem among them
	huge     uint64 // largest HugetlbPages
	pte      uint64 // page tables, summed
	memlock  uint64 // smallest soft memlock limit read
	haveLock bool
}

func checkSharedMemory(in *Inputs) Finding {
	f := Finding{ID: "shared-memory", Title: "Large shared memory, huge pages and memlock"}
	threshold := largeShm(in.Snap.Memory.MemTotalKB)
	byName := map[string]*shmUser{}
	var names []string
	for _, p := range in.Procs.List {
		if p.RSSShmem < threshold && p.HugetlbPages < threshold {
			continue
		}
		key := p.Comm + "\x00" + strconv.FormatUint(p.UID, 10)
		g := byName[key]
		if g == nil {
			g = &shmUser{comm: p.Comm, uid: p.UID}
			byName[key] = g
			names = append(names, key)
		}
		g.procs++
		g.shm = max(g.shm, p.RSSShmem)
		g.huge = max(g.huge, p.HugetlbPages)
		g.pte += p.PTE
		if p.MemlockKnown && (!g.haveLock || p.Memlock < g.memlock) {
			g.memlock, g.haveLock = p.Memlock, true
		}
	}
	f.add("threshold", "processes with at least %s of shared memory resident or of hugetlb mapped", size(threshold))
	if len(names) == 0 {
		f.Summary = "no process maps " + size(threshold) + " of shared memory or more"
		return f
	}
	slices.SortFunc(names, func(a, b string) int { return cmpDesc(byName[a].shm+byName[a].huge, byName[b].shm+byName[b].huge) })

	t := Table{Header: []string{"process", "user", "processes", "shared on 4 KiB pages", "hugetlb", "page tables", "memlock"}}
	var onSmall []string
	// The memlock a user needs: its largest shared area, slightly above.
	type lockNeed struct {
		area  uint64
		comms []string
	}
	locks := map[string]*lockNeed{}
	var lockUsers []string
	for _, k := range names {
		g := byName[k]
		lock := "?"
		if g.haveLock {
			lock = limitStr(g.memlock)
		}
		t.Rows = append(t.Rows, []string{g.comm, in.user(g.uid), strconv.Itoa(g.procs), size(g.shm),
			size(g.huge), size(g.pte), lock})
		if g.shm >= threshold && g.huge < g.shm {
			onSmall = append(onSmall, g.comm)
		}
		area := max(g.shm, g.huge)
		if g.haveLock && g.memlock != Unlimited && g.memlock < area {
			f.note("%s runs with a memlock limit of %s, below its shared area of %s: huge pages for an area that large need RLIMIT_MEMLOCK above it (or, for SysV segments, the group vm.hugetlb_shm_group)",
				g.comm, limitStr(g.memlock), size(area))
			user := in.user(g.uid)
			l := locks[user]
			if l == nil {
				l = &lockNeed{}
				locks[user] = l
				lockUsers = append(lockUsers, user)
			}
			l.area = max(l.area, area)
			l.comms = appendOnce(l.comms, g.comm)
		}
	}
	f.Tables = append(f.Tables, t)
	for _, user := range lockUsers {
		l := locks[user]
		lim := (l.area + l.area/20 + 1023) / 1024 // slightly above the area, in kB
		f.Fix = append(f.Fix,
			fmt.Sprintf("%s soft memlock %d   # /etc/security/limits.conf; restart %s", user, lim, strings.Join(l.comms, ", ")),
			fmt.Sprintf("%s hard memlock %d", user, lim))
	}
	if len(onSmall) == 0 {
		f.Summary = "the large shared memory users map it with huge pages"
		if len(f.Fix) > 0 {
			f.Severity = Warn
			f.Summary += ", but a memlock limit is below their shared area"
		}
		return f
	}
	f.Severity = Warn
	f.Summary = fmt.Sprintf("%s keep their shared memory on 4 KiB pages", strings.Join(onSmall, ", "))
	f.Why = "Every process mapping a shared area with 4 KiB pages has its own page tables for all of it, which are not swappable and grow with each connection (the seed's incident: page tables and swapping exhausted memory in a week); 2 MiB huge pages cut them 512 times."
	if plan := planHugePages(in); plan.total > 0 {
		f.Fix = append([]string{plan.line()}, f.Fix...)
	}
	for _, c := range onSmall {
		if hint := dbHint(c); hint != "" {
			f.Fix = appendOnce(f.Fix, hint)
		}
	}
	return f
}

// dbHint is the database setting that asks for huge pages.
func dbHint(comm string) string {
	switch {
	case comm == "postgres" || strings.HasPrefix(comm, "postgres:"):
		return "postgresql.conf: huge_pages = on   # PostgreSQL maps its shared buffers with MAP_HUGETLB"
	case strings.HasPrefix(comm, "ora_") || comm == "oracle" || strings.HasPrefix(comm, "oracle"):
		return "Oracle: USE_LARGE_PAGES=ONLY, and no MEMORY_TARGET (AMM cannot use hugetlbfs)"
	case comm == "mysqld" || comm == "mariadbd":
		return "my.cnf: large_pages = ON"
	case comm == "java":
		return "java: -XX:+UseLargePages"
	}
	return ""
}

func limitStr(v uint64) string {
	if v == Unlimited {
		return "unlimited"
	}
	return size(v)
}
