package metrics

import (
	"os"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// TestHostGauges reads the two-node test tree, whose 2 MiB pool is the
// huge page article's worked example: Total 13007, Free 11813, Rsvd 3372.
func TestHostGauges(t *testing.T) {
	reg := gatherer(NewHostCollector(func() sysstate.Snapshot {
		return sysstate.Take("../../host/sysstate/testdata/numa/proc", "../../host/sysstate/testdata/numa/sys")
	}))
	size := map[string]string{"page_size": "2097152"}
	for state, want := range map[string]float64{"total": 13007, "free": 11813, "reserved": 3372} {
		if v := value(t, reg, "memtrace_hugepage_pool_pages", map[string]string{"page_size": "2097152", "state": state}); v != want {
			t.Errorf("pool %s = %v, want %v", state, v, want)
		}
	}
	if v := value(t, reg, "memtrace_hugepage_pool_never_used_bytes", size); v != (11813-3372)*2<<20 {
		t.Errorf("never used = %v bytes, want (Free - Rsvd) pages of 2 MiB", v)
	}
	if v := value(t, reg, "memtrace_vm_min_free_bytes", nil); v != 45725*1024 {
		t.Errorf("min free = %v", v)
	}
	// Node 1's Normal zone: all free memory in order-0 blocks.
	if v := value(t, reg, "memtrace_buddy_free_blocks", map[string]string{"node": "1", "zone": "Normal", "order": "0"}); v != 9012 {
		t.Errorf("node 1 Normal order 0 = %v, want 9012", v)
	}
	if v := value(t, reg, "memtrace_buddy_free_blocks", map[string]string{"node": "1", "zone": "Normal", "order": "1"}); v != 0 {
		t.Errorf("node 1 Normal order 1 = %v, want 0", v)
	}
	// The zone at a failure: free against the watermarks, in bytes.
	page := float64(os.Getpagesize())
	n1 := map[string]string{"node": "1", "zone": "Normal"}
	if v := value(t, reg, "memtrace_zone_free_bytes", n1); v != 9012*page {
		t.Errorf("node 1 Normal free = %v, want 9012 pages", v)
	}
	for mark, pages := range map[string]float64{"min": 5773, "low": 22273, "high": 38773} {
		if v := value(t, reg, "memtrace_zone_watermark_bytes", map[string]string{"node": "1", "zone": "Normal", "watermark": mark}); v != pages*page {
			t.Errorf("node 1 Normal %s = %v, want %v pages", mark, v, pages)
		}
	}
	if v := value(t, reg, "memtrace_host_state_read_errors", nil); v != 0 {
		t.Errorf("read errors = %v", v)
	}
}

// TestDemandGauges: the atomic demand in bytes, its recent peaks per
// window and class, and nothing at all when it is not counted.
func TestDemandGauges(t *testing.T) {
	page := uint64(os.Getpagesize())
	m := demand.NewMeter(100 * time.Millisecond)
	m.Keep = time.Minute
	t0 := time.Unix(1000, 0)
	var total event.AtomicDemand
	m.Add(t0, total)
	for i := 1; i <= 12; i++ {
		if i == 5 {
			total.HighPages += 300
		}
		total.OtherPages += 10
		m.Add(t0.Add(time.Duration(i)*100*time.Millisecond), total)
	}
	reg := gatherer(NewDemandCollector(func() (demand.Reading, bool) {
		r := demand.Reading{Summary: m.Summary(), Latest: m.Latest()}
		r.RecentInterval, r.RecentSecond = m.Recent()
		return r, true
	}))
	for labels, want := range map[[2]string]uint64{
		{"100ms", "high"}: 300, {"100ms", "other"}: 10, {"100ms", "all"}: 310, {"1s", "high"}: 300, {"1s", "all"}: 400,
	} {
		if v := value(t, reg, "memtrace_atomic_demand_peak_bytes", map[string]string{"window": labels[0], "gfp": labels[1]}); v != float64(want*page) {
			t.Errorf("peak %v = %v, want %d pages", labels, v, want)
		}
	}
	if v := value(t, reg, "memtrace_atomic_demand_bytes_total", map[string]string{"gfp": "other"}); v != float64(120*page) {
		t.Errorf("other total = %v", v)
	}
	none := gatherer(NewDemandCollector(func() (demand.Reading, bool) { return demand.Reading{}, false }))
	if mfs, err := none.Gather(); err != nil || len(mfs) != 0 {
		t.Errorf("not counted, yet %d families (%v)", len(mfs), err)
	}
}
