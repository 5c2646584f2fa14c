package sysstate

import (
	"errors"
	"fmt"
	iofs "io/fs"
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
	// CompactionProactiveness is how hard kcompactd compacts in the
	// background (0 off, 20 the default); CompactUnevictableAllowed 0
	// keeps compaction from moving mlocked pages. Free memory in small
	// blocks stays so when either is 0. -1 where the kernel has no such
	// sysctl (proactiveness before 5.9), which is not an error.
	CompactionProactiveness   int64 `json:"compaction_proactiveness"`
	CompactUnevictableAllowed int64 `json:"compact_unevictable_allowed"`
}

// readSysctl reads each sysctl with procfs's SysctlInts, one small file at
// a time: procfs's VM() would read all ~50 files in /proc/sys/vm.
func readSysctl(fs procfs.FS, procRoot string) (Sysctl, []error) {
	var s Sysctl
	var errs []error
	for _, f := range []struct {
		name     string
		dst      *int64
		optional bool // absent on some kernels: -1, no error
	}{
		{"vm.min_free_kbytes", &s.MinFreeKbytes, false},
		{"vm.zone_reclaim_mode", &s.ZoneReclaimMode, false},
		{"vm.watermark_scale_factor", &s.WatermarkScaleFactor, false},
		{"vm.watermark_boost_factor", &s.WatermarkBoostFactor, false},
		{"vm.nr_hugepages", &s.NrHugepages, false},
		{"vm.nr_overcommit_hugepages", &s.NrOvercommitHugepages, false},
		{"vm.hugetlb_shm_group", &s.HugetlbShmGroup, false},
		{"vm.compaction_proactiveness", &s.CompactionProactiveness, true},
		{"vm.compact_unevictable_allowed", &s.CompactUnevictableAllowed, true},
	} {
		path := filepath.Join(procRoot, "sys", strings.ReplaceAll(f.name, ".", "/"))
		v, err := fs.SysctlInts(f.name)
		if f.optional && errors.Is(err, iofs.ErrNotExist) {
			*f.dst = -1
			continue
		}
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
