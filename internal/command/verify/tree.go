package verify

import (
	"github.com/memtrace/memtrace/internal/command/hugepages"
)

// processTree decides whether a pid descends from a root process, for
// --pid and for hosts where no cgroup can be created. The kernel programs
// then trace every huge-page call (they are rare) and the tree filters in
// user space by walking PPid links in /proc.
//
// Its limit: a process that made its call and exited before the event was
// read cannot be placed, and a daemon reparented to init has lost its
// link. Known descendants are remembered, and for a command memtrace
// starts itself it becomes a child subreaper (see startCommand), so
// daemonizing children are reparented to memtrace rather than to init.
type processTree struct {
	procRoot string
	root     int
	known    map[int]bool
}

func newProcessTree(procRoot string, root int) *processTree {
	return &processTree{procRoot: procRoot, root: root, known: map[int]bool{root: true}}
}

// contains reports whether pid is root or one of its descendants.
func (t *processTree) contains(pid int) bool {
	if t.known[pid] {
		return true
	}
	var chain []int
	for p, depth := pid, 0; p > 1 && depth < 64; depth++ {
		if t.known[p] {
			for _, c := range chain {
				t.known[c] = true
			}
			return true
		}
		chain = append(chain, p)
		st, err := hugepages.ReadStatus(t.procRoot, p)
		if err != nil {
			return false
		}
		p = st.PPid
	}
	return false
}
