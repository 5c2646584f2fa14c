package cgroup

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// V2Root is the mount point of the cgroup v2 hierarchy ("" if none): the
// whole tree on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func V2Root() string {
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	return ""
}

// MemoryRoot is the hierarchy the memory controller lives in: the v1
// memory mount where there is one, the v2 tree otherwise.
func MemoryRoot() string {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.usage_in_bytes"); err == nil {
		return "/sys/fs/cgroup/memory"
	}
	return V2Root()
}

// Resolver maps the ids of one hierarchy to paths. Ids are only unique
// within a hierarchy (each has its own kernfs root), so events' cgroup_id
// resolves against V2Root and memcg_id against MemoryRoot. Unknown ids
// trigger a rescan at most once per MinRescan, because cgroups come and go
// with containers and services.
type Resolver struct {
	Root      string
	MinRescan time.Duration

	mu       sync.Mutex
	paths    map[uint64]string
	lastScan time.Time
}

// NewResolver returns a resolver over one hierarchy root.
func NewResolver(root string) *Resolver {
	return &Resolver{Root: root, MinRescan: 5 * time.Second, paths: map[uint64]string{}}
}

// Path returns the path of id inside the hierarchy ("/" for its root,
// "/system.slice/postgresql.service"), or "" when unknown.
func (r *Resolver) Path(id uint64) string {
	if r == nil || id == 0 || r.Root == "" {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.paths[id]; ok {
		return p
	}
	if !r.lastScan.IsZero() && time.Since(r.lastScan) < r.MinRescan {
		return ""
	}
	r.scan()
	return r.paths[id]
}

func (r *Resolver) scan() {
	r.lastScan = time.Now()
	root := r.Root
	var rootDev uint64
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		// Stay in this hierarchy: a hybrid host mounts the v2 tree inside
		// the v1 one (and v1 controllers inside a tmpfs).
		if p == root {
			rootDev = st.Dev
		} else if st.Dev != rootDev {
			return filepath.SkipDir
		}
		r.paths[st.Ino] = "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		return nil
	})
}
