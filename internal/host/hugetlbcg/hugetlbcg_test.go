package hugetlbcg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSizeName(t *testing.T) {
	for in, want := range map[uint64]string{2 << 20: "2MB", 1 << 30: "1GB", 64 << 10: "64KB", 32 << 20: "32MB", 16 << 30: "16GB"} {
		if got := SizeName(in); got != want {
			t.Errorf("%d: %q, want %q", in, got, want)
		}
	}
}

// A v2 tree as the kernel lays it out: the root has no hugetlb files,
// /kubepods limits faults, /kubepods/pod1 limits reservations.
func TestReadV2Chain(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "kubepods"), map[string]string{
		"hugetlb.2MB.max": "4194304", "hugetlb.2MB.current": "4194304", "hugetlb.2MB.events": "max 3",
		"hugetlb.2MB.rsvd.max": "max", "hugetlb.2MB.rsvd.current": "6291456",
	})
	write(t, filepath.Join(root, "kubepods/pod1"), map[string]string{
		"hugetlb.2MB.max": "max", "hugetlb.2MB.current": "2097152", "hugetlb.2MB.events": "max 0",
		"hugetlb.2MB.rsvd.max": "2097152", "hugetlb.2MB.rsvd.current": "2097152",
	})
	write(t, filepath.Join(root, "kubepods/pod1/ctr"), nil) // controller not enabled below the pod
	h := Hierarchy{Root: root, V2: true}
	chain := Chain(h, "/kubepods/pod1/ctr", 2<<20)
	if len(chain) != 2 || chain[0].Path != "/kubepods/pod1" || chain[1].Path != "/kubepods" {
		t.Fatalf("chain %+v", chain)
	}
	pod, kube := chain[0], chain[1]
	if pod.Limit != nil || *pod.RsvdLimit != 2<<20 || *pod.RsvdUsage != 2<<20 || pod.RsvdLimitFile != "hugetlb.2MB.rsvd.max" {
		t.Errorf("pod %+v", pod)
	}
	if *kube.Limit != 4<<20 || kube.Usage != 4<<20 || *kube.Failures != 3 || kube.LimitFile != "hugetlb.2MB.max" || kube.RsvdLimit != nil {
		t.Errorf("kubepods %+v", kube)
	}
	if l, ok := Refusing(chain, 2<<20, false); !ok || l.Path != "/kubepods" {
		t.Errorf("fault refused by %+v %v", l, ok)
	}
	if l, ok := Refusing(chain, 2<<20, true); !ok || l.Path != "/kubepods/pod1" {
		t.Errorf("reservation refused by %+v %v", l, ok)
	}
	if _, ok := Refusing(chain[:1], 2<<20, false); ok {
		t.Error("no fault limit in the pod, yet refused")
	}
	lim := Limited(h, []uint64{2 << 20, 1 << 30})
	if len(lim) != 2 {
		t.Errorf("limited %+v", lim)
	}
}

// v1 (cgroup-v1 hugetlb, and kernels before 5.7 without rsvd files).
func TestReadV1(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "db"), map[string]string{
		"hugetlb.1GB.limit_in_bytes": "9223372036854771712", "hugetlb.1GB.usage_in_bytes": "0",
		"hugetlb.2MB.limit_in_bytes": "2097152", "hugetlb.2MB.usage_in_bytes": "2097152", "hugetlb.2MB.failcnt": "7",
	})
	h := Hierarchy{Root: root}
	l, err := Read(h, "/db", 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	if *l.Limit != 2<<20 || *l.Failures != 7 || l.RsvdUsage != nil || l.RsvdLimitFile != "" || l.LimitFile != "hugetlb.2MB.limit_in_bytes" {
		t.Errorf("%+v", l)
	}
	if !l.Refuses(1) || l.RefusesReservation(1<<40) {
		t.Errorf("refuses: %v %v", l.Refuses(1), l.RefusesReservation(1<<40))
	}
	if l, err := Read(h, "/db", 1<<30); err != nil || l.Limit != nil {
		t.Errorf("1 GiB: %+v %v (PAGE_COUNTER_MAX is no limit)", l, err)
	}
	if _, err := Read(h, "/", 2<<20); err == nil {
		t.Error("read a cgroup without files")
	}
}

func TestHierarchiesAndPath(t *testing.T) {
	hs, err := Hierarchies("testdata/mountinfo-hybrid")
	if err != nil {
		t.Fatal(err)
	}
	// The v2 tree at /sys/fs/cgroup/unified is listed only when its
	// cgroup.controllers (read on this host) names hugetlb; the v1 mount
	// of a container's subtree (root /docker/abc) is not a hierarchy root.
	var v1 []string
	for _, h := range hs {
		if !h.V2 {
			v1 = append(v1, h.Root)
		}
	}
	if len(v1) != 1 || v1[0] != "/sys/fs/cgroup/hugetlb" {
		t.Errorf("v1 hierarchies %v", v1)
	}
	dir := t.TempDir()
	cg := filepath.Join(dir, "cgroup")
	if err := os.WriteFile(cg, []byte("12:hugetlb:/db.slice\n11:cpu,cpuacct:/\n0::/system.slice/db.service\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := PathOf(Hierarchy{Root: "/x"}, cg); err != nil || p != "/db.slice" {
		t.Errorf("v1 path %q %v", p, err)
	}
	if p, err := PathOf(Hierarchy{Root: "/x", V2: true}, cg); err != nil || p != "/system.slice/db.service" {
		t.Errorf("v2 path %q %v", p, err)
	}
	if m, ok := parseMount(`40 29 0:37 /docker/abc /mnt/inner\040hugetlb rw - cgroup cgroup rw,hugetlb`); !ok || m.point != "/mnt/inner hugetlb" {
		t.Errorf("%+v", m)
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"max\n", "2097152", "9223372036854771712", "-1", "", "0x10", " 42 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			if !strings.Contains(err.Error(), "neither max nor a number") {
				t.Fatal(err)
			}
			return
		}
		if l != nil && *l >= unlimitedFrom {
			t.Fatalf("%q: limit %d is no limit", s, *l)
		}
	})
}

func FuzzParseMount(f *testing.F) {
	f.Add(`38 29 0:35 / /sys/fs/cgroup/hugetlb rw - cgroup cgroup rw,hugetlb`)
	f.Add(`30 29 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw`)
	f.Add(`1 2 3 \ \0 - a b c`)
	f.Fuzz(func(t *testing.T, line string) {
		m, ok := parseMount(line)
		if ok && m.fstype == "" {
			t.Fatalf("%q: mount without type", line)
		}
	})
}
