package promtext

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestProcessCollector: the values are this process's, compared with
// what the test reads itself.
func TestProcessCollector(t *testing.T) {
	var b bytes.Buffer
	if err := NewRegistry(ProcessCollector()).Write(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(&b)
	if err != nil {
		t.Fatal(err)
	}
	val := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("%s missing", name)
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	if rss := val("process_resident_memory_bytes"); rss < 1<<20 || rss > 1<<33 {
		t.Errorf("rss %v", rss)
	}
	st, err := os.Stat("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	// /proc/self's inode time is when the process's /proc entry was
	// first looked at, within seconds of its start here.
	if start := val("process_start_time_seconds"); start > float64(time.Now().Unix())+1 || start < float64(st.ModTime().Unix())-600 {
		t.Errorf("start %v, now %d", start, time.Now().Unix())
	}
	if fds := val("process_open_fds"); fds < 3 {
		t.Errorf("open fds %v", fds)
	}
	if g := val("go_goroutines"); g < 1 {
		t.Errorf("goroutines %v", g)
	}
	for _, n := range []string{"process_cpu_seconds_total", "process_max_fds", "process_virtual_memory_bytes", "go_threads", "go_memstats_heap_alloc_bytes", "go_memstats_sys_bytes", "go_gc_cycles_total", "go_info"} {
		val(n)
	}
}
