package sysstate

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/prometheus/procfs"
)

// Sysctl holds the vm sysctls that set how much memory the kernel keeps
// free for atomic allocations and how big the hugetlb pool is. A sysctl
// this kernel does not have (zone_reclaim_mode without CONFIG_NUMA) reads
// as 0 and is named in Snapshot.Errors.
type Sysctl struct {
	// MinFreeKbytes sets the min watermarks; raising it above the size of
	// an atomic allocation burst is the usual cure for order-1 failures.
	MinFreeKbytes int64 `json:"min_free_kbytes"`
	// ZoneReclaimMode bits: 1 reclaim in the local zone, 2 write dirty
	// pages, 4 swap. 0 prefers other nodes' memory to reclaim.
	ZoneReclaimMode       int64 `json:"zone_reclaim_mode"`
	WatermarkScaleFactor  int64 `json:"watermark_scale_factor"` // low/high gap, in 1/10000 of memory
	WatermarkBoostFactor  int64 `json:"watermark_boost_factor"` // boost after fragmentation events
	NrHugepages           int64 `json:"nr_hugepages"`           // default-size pool
	NrOvercommitHugepages int64 `json:"nr_overcommit_hugepages"`
	// HugetlbShmGroup is the gid allowed SHM_HUGETLB segments without
	// CAP_IPC_LOCK; a database in another group silently gets none.
	HugetlbShmGroup int64 `json:"hugetlb_shm_group"`
}

// readSysctl reads each sysctl with procfs's SysctlInts, one small file at
// a time: procfs's VM() would read all ~50 files in /proc/sys/vm.
func readSysctl(fs procfs.FS, procRoot string) (Sysctl, []error) {
	var s Sysctl
	var errs []error
	for _, f := range []struct {
		name string
		dst  *int64
	}{
		{"vm.min_free_kbytes", &s.MinFreeKbytes},
		{"vm.zone_reclaim_mode", &s.ZoneReclaimMode},
		{"vm.watermark_scale_factor", &s.WatermarkScaleFactor},
		{"vm.watermark_boost_factor", &s.WatermarkBoostFactor},
		{"vm.nr_hugepages", &s.NrHugepages},
		{"vm.nr_overcommit_hugepages", &s.NrOvercommitHugepages},
		{"vm.hugetlb_shm_group", &s.HugetlbShmGroup},
	} {
		path := filepath.Join(procRoot, "sys", strings.ReplaceAll(f.name, ".", "/"))
		v, err := fs.SysctlInts(f.name)
		if err == nil && len(v) != 1 {
			err = fmt.Errorf("want one number, got %d", len(v))
		}
		if err != nil {
			errs = append(errs, fileError(path, err))
			continue
		}
		*f.dst = int64(v[0])
	}
	return s, errs
}
