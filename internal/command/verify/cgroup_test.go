package verify

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

func TestCgroupHomes(t *testing.T) {
	tests := map[string][]home{
		// This development machine: v1 controllers and v2 at unified.
		"hybrid": {{"/sys/fs/cgroup/unified", true}, {"/sys/fs/cgroup/memory/process_api/096ad0fb", false}},
		// RHEL 7 / CentOS 7: v1 only, memory controller matched by memcg id.
		"v1": {{"/sys/fs/cgroup/memory/system.slice/oracle.service", false}},
		// Unified hosts (RHEL 9, Debian 11+).
		"v2": {{"/sys/fs/cgroup/user.slice/user-0.slice/session-3.scope", true}},
		// A container with a cgroup namespace mount of its own subtree.
		"container": {{"/sys/fs/cgroup", true}},
	}
	for name, want := range tests {
		mounts, err := cgroupMounts(filepath.Join("testdata/cgroup", name+".mountinfo"))
		if err != nil {
			t.Fatal(err)
		}
		own, err := ownCgroups(filepath.Join("testdata/cgroup", name+".cgroup"))
		if err != nil {
			t.Fatal(err)
		}
		if got := cgroupHomes(mounts, own); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
	// Our cgroup outside what a mount shows: not usable.
	got := cgroupHomes([]cgroupMount{{root: "/docker/abc", mountPoint: "/sys/fs/cgroup", v2: true}}, map[string]string{"": "/other"})
	if len(got) != 0 {
		t.Errorf("got %+v", got)
	}
}

// TestPlacementLive creates, enters, leaves and removes a cgroup on this
// host, as verify does around the command it starts.
func TestPlacementLive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a cgroup")
	}
	p, err := newPlacement("/proc", "memtrace-verify-test")
	if err != nil {
		t.Fatalf("no cgroup could be made on this host: %v", err)
	}
	t.Cleanup(func() { p.remove() })
	if err := p.enter(); err != nil {
		t.Fatal(err)
	}
	pids, _ := readPids(filepath.Join(p.dir, "cgroup.procs"))
	if len(pids) != 1 || pids[0] != os.Getpid() {
		t.Errorf("cgroup holds %v, want only %d", pids, os.Getpid())
	}
	if err := p.leave(); err != nil {
		t.Fatal(err)
	}
	if err := p.remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists", p.dir)
	}
}

func TestProcessTree(t *testing.T) {
	root := t.TempDir()
	write := func(pid, ppid int) {
		dir := filepath.Join(root, itoa(pid))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\tx\nPPid:\t"+itoa(ppid)+"\n"), 0o644)
	}
	write(10, 1)  // the followed process
	write(11, 10) // its child
	write(12, 11) // grandchild
	write(20, 1)  // unrelated
	tr := newProcessTree(root, 10)
	if !tr.contains(12) || !tr.contains(11) || !tr.contains(10) {
		t.Error("descendants not found")
	}
	if tr.contains(20) || tr.contains(99) {
		t.Error("unrelated or unknown process followed")
	}
	// A descendant stays known after it exits.
	os.RemoveAll(filepath.Join(root, "12"))
	if !tr.contains(12) {
		t.Error("known descendant forgotten")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
