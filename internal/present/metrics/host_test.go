package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// TestHostGauges reads the two-node test tree, whose 2 MiB pool is the
// huge page article's worked example: Total 13007, Free 11813, Rsvd 3372.
func TestHostGauges(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewHostCollector(func() sysstate.Snapshot {
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
	if v := value(t, reg, "memtrace_host_state_read_errors", nil); v != 0 {
		t.Errorf("read errors = %v", v)
	}
}
