package provoke

import (
	"slices"
	"strings"
	"testing"
)

func TestWarnAllocFailure(t *testing.T) {
	requireRoot(t, "creates a memory cgroup and reads tracefs and /dev/kmsg")
	requireV1(t)
	comm := testComm("wa")
	c := counter(t, "kmem", "mm_page_alloc", PageAllocFailureFilter+` && comm == "`+comm+`"`)

	rep, err := WarnAllocFailure(WithComm(comm))
	t.Logf("report: %+v", rep)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.Warning, comm+": vmalloc error: size ") || !strings.Contains(rep.Warning, "GFP_KERNEL_ACCOUNT") {
		t.Errorf("warning %q, want a vmalloc error from %s", rep.Warning, comm)
	}
	// Per attempt: the fill's order-2 failure, the kmalloc try (order 6
	// for the fd table here, 5 for the xattr) and at least one vmalloc
	// page (order 0).
	got := count(t, c)
	if got < 3 || got != rep.Events {
		t.Errorf("mm_page_alloc with pfn == -1: counter %d, report %d, want >= 3 and equal", got, rep.Events)
	}
	checkAttribution(t, rep, hits(t, c))
	for _, o := range []int{0, 2} {
		if !slices.Contains(rep.Orders, o) {
			t.Errorf("orders %v, want %d among them", rep.Orders, o)
		}
	}
	if !slices.ContainsFunc(rep.Orders, func(o int) bool { return o > 2 }) {
		t.Errorf("orders %v, want the kmalloc try (order > 2) among them", rep.Orders)
	}
}
