package container_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/decode/container"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// TestAttributorRealCgroups creates a kubelet-shaped cgroup tree in this
// host's memory hierarchy (under a test-only parent, so no kubelet's tree
// is touched) and resolves the container's cgroup id, the way an event's
// memcg_id is resolved.
func TestAttributorRealCgroups(t *testing.T) {
	privtest.RequireRoot(t)
	root := cgroup.MemoryRoot()
	if root == "" {
		t.Fatal("no memory cgroup hierarchy mounted")
	}
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	top := filepath.Join(root, "memtrace-test.slice")
	leaf := filepath.Join(top, "kubepods.slice", "kubepods-besteffort.slice",
		"kubepods-besteffort-pod729d2f46_480d_4796_a76c_e227e2671d31.slice", "cri-containerd-"+id+".scope")
	if err := os.MkdirAll(leaf, 0o755); err != nil {
		t.Fatalf("creating cgroups: %v", err)
	}
	t.Cleanup(func() {
		// cgroups are removed with rmdir, innermost first.
		for p := leaf; len(p) >= len(top); p = filepath.Dir(p) {
			if err := os.Remove(p); err != nil {
				t.Errorf("removing cgroup %s: %v", p, err)
			}
		}
	})
	ino, err := cgroup.ID(leaf)
	if err != nil {
		t.Fatal(err)
	}
	got := container.NewAttributor().Lookup(0, ino)
	want := event.Container{ID: id, Runtime: container.RuntimeContainerd, PodUID: "729d2f46-480d-4796-a76c-e227e2671d31", QoS: container.QoSBestEffort}
	if got != want {
		t.Errorf("Lookup(memcg %d) = %+v, want %+v", ino, got, want)
	}
}
