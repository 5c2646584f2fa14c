package container

import (
	"sync"

	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/event"
)

// PathFunc maps a cgroup id to its path in one hierarchy ("" if unknown),
// as (*cgroup.Resolver).Path does.
type PathFunc func(id uint64) string

// Attributor maps the two cgroup ids every event carries to a container.
// Ids are only unique within a hierarchy, so each is resolved against its
// own: memcg_id against the memory controller's hierarchy (v1 or v2), the
// one that exists on every host that limits memory, and cgroup_id against
// the v2 tree, which on a hybrid host may be the only one a runtime
// placed its containers in. It is safe for concurrent use.
type Attributor struct {
	memcg, v2 PathFunc

	mu    sync.Mutex
	cache map[[2]uint64]event.Container
}

// maxCached bounds the cache; it is cleared when full, because cgroups of
// finished containers never come back and a long-running exporter must
// not keep them all.
const maxCached = 4096

// NewAttributor resolves against the hierarchies of this host.
func NewAttributor() *Attributor {
	memcg := cgroup.NewResolver(cgroup.MemoryRoot())
	// On a unified host both ids live in the same tree: share the scan.
	v2 := memcg.Path
	if root := cgroup.V2Root(); root == "" {
		v2 = nil
	} else if root != memcg.Root {
		v2 = cgroup.NewResolver(root).Path
	}
	return NewAttributorFunc(memcg.Path, v2)
}

// NewAttributorFunc resolves with the given functions; either may be nil.
func NewAttributorFunc(memcg, v2 PathFunc) *Attributor {
	return &Attributor{memcg: memcg, v2: v2, cache: map[[2]uint64]event.Container{}}
}

// Lookup returns the container of a task from its event's ids. An id
// whose cgroup is gone (the container exited before the lookup) gives the
// zero Container and is not cached, so a later rescan can still find a
// new one.
func (a *Attributor) Lookup(cgroupID, memcgID uint64) event.Container {
	if a == nil {
		return event.Container{}
	}
	key := [2]uint64{cgroupID, memcgID}
	a.mu.Lock()
	info, ok := a.cache[key]
	a.mu.Unlock()
	if ok {
		return info
	}
	found := false
	if a.memcg != nil && memcgID != 0 {
		if p := a.memcg(memcgID); p != "" {
			found = true
			info = Parse(p)
		}
	}
	// The memory cgroup can be an ancestor of the task's cgroup (the pod's,
	// when containers do not enable the controller): the task's own v2
	// cgroup may name the container.
	if info.ID == "" && a.v2 != nil && cgroupID != 0 {
		if p := a.v2(cgroupID); p != "" {
			found = true
			if c := Parse(p); c.ID != "" || !info.InContainer() {
				info = c
			}
		}
	}
	if found {
		a.mu.Lock()
		if len(a.cache) >= maxCached {
			clear(a.cache)
		}
		a.cache[key] = info
		a.mu.Unlock()
	}
	return info
}
