package container

import (
	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/event"
)

// TaskNamer returns what names the cgroup and container of a task on this
// host, for the session to apply to every record: memory cgroup ids
// against the memory controller's hierarchy, v2 ids against the v2 tree
// (ids are unique only within a hierarchy). It is not safe for concurrent
// use; the session serialises its naming.
func TaskNamer() func(*event.Task) {
	memcg := cgroup.NewResolver(cgroup.MemoryRoot())
	var v2 PathFunc
	if root := cgroup.V2Root(); root == memcg.Root {
		v2 = memcg.Path
	} else if root != "" {
		v2 = cgroup.NewResolver(root).Path
	}
	containers := NewAttributorFunc(memcg.Path, v2)
	return func(t *event.Task) {
		if t.Cgroup == "" {
			t.Cgroup = memcg.Path(t.MemcgID)
		}
		if t.Container == nil {
			if info := containers.Lookup(t.CgroupID, t.MemcgID); info.InContainer() {
				t.Container = &info
			}
		}
	}
}
