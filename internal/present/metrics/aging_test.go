package metrics

import (
	"fmt"
	"testing"
	"time"
)

// TestAgingRetriesFailedDelete: when deleting an idle process's
// aggregates fails, its counters are kept and the delete is tried again;
// nothing is counted twice.
func TestAgingRetriesFailedDelete(t *testing.T) {
	src := newFakeSource()
	now := time.Unix(1000, 0)
	e := New(src, Options{CommLabel: true, AgeOut: time.Minute, GFPClass: classOf, Now: func() time.Time { return now }})
	reg := registry(t, e)
	labels := map[string]string{"comm": "postgres"}
	src.fail(10, "postgres", 0, 0xcc0, 4)
	value(t, reg, "memtrace_page_alloc_failures_total", labels)
	now = now.Add(2 * time.Minute)
	src.forgetErr = fmt.Errorf("deleting from alloc_agg: boom")
	if v := value(t, reg, "memtrace_page_alloc_failures_total", labels); v != 4 {
		t.Errorf("after a failed delete = %v, want 4", v)
	}
	if v := value(t, reg, "memtrace_aged_out_processes_total", nil); v != 0 {
		t.Errorf("aged out after a failed delete = %v, want 0", v)
	}
	src.forgetErr = nil
	src.fail(11, "java", 0, 0xcc0, 1) // a sync that deletes 10 at last
	if v := value(t, reg, "memtrace_aged_out_processes_total", nil); v != 1 || len(src.forgot) != 1 {
		t.Errorf("aged out = %v, forgot %v; want 1, [10]", v, src.forgot)
	}
	src.fail(10, "postgres", 0, 0xcc0, 2)
	if v := value(t, reg, "memtrace_page_alloc_failures_total", labels); v != 6 {
		t.Errorf("after the process came back = %v, want 6", v)
	}
}
