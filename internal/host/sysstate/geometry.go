package sysstate

import (
	"fmt"

	"github.com/prometheus/procfs"
)

// Geometry is what memtrace's probes and their decoder need of the host's
// memory layout. It is fixed at boot.
type Geometry struct {
	// PageblockOrder and its source, as in Snapshot.
	PageblockOrder       int
	PageblockOrderSource string
	// HugepageSizeKB is the default huge page size (meminfo Hugepagesize).
	HugepageSizeKB uint64
}

// ReadGeometry reads only what Geometry needs (meminfo, buddyinfo,
// pagetypeinfo), a fraction of a snapshot's cost, so the session can find
// it beside its other start-up work.
func ReadGeometry(procRoot, sysRoot string) (Geometry, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return Geometry{}, fmt.Errorf("opening procfs at %s: %w", procRoot, err)
	}
	var g Geometry
	mem, err := readMemory(fs, procRoot)
	if err != nil {
		return g, err
	}
	g.HugepageSizeKB = mem.HugepageSizeKB
	maxOrder := defaultMaxOrder
	if buddy, err := readBuddy(fs, procRoot); err == nil && len(buddy) > 0 {
		maxOrder = len(buddy[0].FreeBlocks) - 1
	}
	g.PageblockOrder, g.PageblockOrderSource, err = readPageblockOrder(procRoot, sysRoot, g.HugepageSizeKB, maxOrder)
	return g, err
}
