package event

import (
	"strings"
	"testing"
)

func u64(v uint64) *uint64 { return &v }

func TestHugeFaultDiagnose(t *testing.T) {
	const mb2 = 2 << 20
	pool := func(total, free, resv uint64) HugeFaultPool {
		return HugeFaultPool{Total: total, Free: free, Reserved: resv}
	}
	cg := func(usage uint64, limit *uint64) *HugetlbCgroup {
		return &HugetlbCgroup{ID: 9, Path: "/db", AtFault: &HugetlbCounters{Usage: usage, Limit: limit, LimitFile: "hugetlb.2MB.max"}}
	}
	cases := []struct {
		name string
		f    HugeFault
		want string
		says string
	}{
		{"noreserve, pool empty", HugeFault{Reservation: "noreserve", Pool: pool(1, 0, 0)}, "pool_empty", "MAP_NORESERVE"},
		{"fork child", HugeFault{Reservation: "not_owner", Pool: pool(4, 2, 2)}, "pool_empty", "after fork"},
		{"overcommit left", HugeFault{Reservation: "noreserve", Pool: HugeFaultPool{Overcommit: 4}}, "unknown", ""},
		{"cgroup limit on a reserved mapping", HugeFault{Reservation: "reserved", Pool: pool(10, 8, 4), Cgroup: cg(2*mb2, u64(2*mb2))},
			"hugetlb_cgroup_limit", "/db allows 4 MiB of 2 MiB pages (hugetlb.2MB.max) and 4 MiB were in use"},
		{"cgroup below its limit", HugeFault{Reservation: "reserved", Pool: pool(10, 8, 4), Cgroup: cg(mb2, u64(2*mb2))}, "unknown", ""},
		{"no limit", HugeFault{Reservation: "reserved", Pool: pool(10, 8, 4), Cgroup: cg(mb2, nil)}, "unknown", ""},
		{"files when the kernel's counters are unknown", HugeFault{Reservation: "noreserve", Pool: pool(10, 8, 0),
			Cgroup: &HugetlbCgroup{ID: 3, Files: &HugetlbCounters{Usage: 0, Limit: u64(0)}}}, "hugetlb_cgroup_limit", "id 3"},
		{"rsvd limit without a reservation", HugeFault{Reservation: "noreserve", Pool: pool(10, 8, 0),
			Cgroup: &HugetlbCgroup{ID: 3, Path: "/x", AtFault: &HugetlbCounters{RsvdUsage: u64(0), RsvdLimit: u64(0), RsvdLimitFile: "hugetlb.2MB.rsvd.max"}}},
			"hugetlb_cgroup_rsvd_limit", "hugetlb.2MB.rsvd.max"},
		{"fs limit", HugeFault{Reservation: "noreserve", Pool: pool(10, 8, 0), FSLimit: &HugeFSLimit{Max: 2, Used: 2}}, "hugetlbfs_limit", "2 of 2"},
		{"owner took it", HugeFault{Reservation: "unmapped_by_owner"}, "unmapped_by_owner", "parent"},
		{"nodes named when unknown", HugeFault{Reservation: "reserved", Pool: HugeFaultPool{Total: 4, Free: 2, NodeFree: []uint32{0, 2}}}, "unknown", "node0=0 node1=2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			f.Mapping.PageSize = mb2
			f.Diagnose()
			if f.Cause != c.want || !strings.Contains(f.Explanation, c.says) {
				t.Errorf("cause %q (%s), want %q saying %q", f.Cause, f.Explanation, c.want, c.says)
			}
		})
	}
}

// TestHugeFaultNamesLimitFile: the kernel's counters have no file names;
// the limit is named by the file read when the event arrived.
func TestHugeFaultNamesLimitFile(t *testing.T) {
	f := HugeFault{Reservation: "reserved", Mapping: HugeMapping{PageSize: 2 << 20}, Cgroup: &HugetlbCgroup{
		ID: 1, Path: "/db", AtFault: &HugetlbCounters{Usage: 2 << 20, Limit: u64(2 << 20)},
		Files: &HugetlbCounters{LimitFile: "hugetlb.2MB.max"},
	}}
	f.Diagnose()
	if f.Cause != "hugetlb_cgroup_limit" || !strings.Contains(f.Explanation, "(hugetlb.2MB.max)") {
		t.Errorf("%s: %s", f.Cause, f.Explanation)
	}
}
