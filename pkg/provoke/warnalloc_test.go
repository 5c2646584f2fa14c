package provoke

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestWarnAllocFailure(t *testing.T) {
	requireRoot(t, "creates a memory cgroup and reads tracefs and /dev/kmsg")
	comm := testComm("wa")
	c := counter(t, "kmem", "mm_page_alloc", PageAllocFailureFilter+` && comm == "`+comm+`"`)
	nrOpen, err := os.ReadFile(nrOpenPath)
	if err != nil {
		t.Fatal(err)
	}

	rep, err := WarnAllocFailure(WithComm(comm))
	t.Logf("report: %+v", rep)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(nrOpenPath); string(after) != string(nrOpen) {
		t.Errorf("fs.nr_open %q after the run, was %q", after, nrOpen)
	}
	if !strings.HasPrefix(rep.Warning, comm+": vmalloc error: size ") || !strings.Contains(rep.Warning, "GFP_KERNEL_ACCOUNT") {
		t.Errorf("warning %q, want a vmalloc error from %s", rep.Warning, comm)
	}
	got := count(t, c)
	if got != rep.Events {
		t.Errorf("mm_page_alloc with pfn == -1: counter %d, report %d, want equal", got, rep.Events)
	}
	if rep.Trigger == "oversize" {
		// Nothing reaches the page allocator's tracepoint: the kmalloc
		// try is refused for its order, vmalloc for its size.
		if want := fmt.Sprintf("vmalloc error: size %d, exceeds total pages", oversizeFds*8); !strings.Contains(rep.Warning, want) {
			t.Errorf("warning %q, want %q", rep.Warning, want)
		}
		if got != 0 {
			t.Errorf("%d mm_page_alloc failures, want none", got)
		}
		return
	}
	// Per attempt in a full cgroup: the fill's order-2 failure, the
	// kmalloc try (order 6 for the fd table here, 5 for the xattr) and at
	// least one vmalloc page (order 0).
	if got < 3 {
		t.Errorf("mm_page_alloc with pfn == -1: %d, want >= 3", got)
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
