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
	if !strings.HasPrefix(rep.Warning, comm+": vmalloc") || !strings.Contains(rep.Warning, "GFP_KERNEL_ACCOUNT") {
		t.Errorf("warning %q, want a vmalloc failure from %s", rep.Warning, comm)
	}
	got := count(t, c)
	if got != rep.Events {
		t.Errorf("mm_page_alloc with pfn == -1: counter %d, report %d, want equal", got, rep.Events)
	}
	if rep.Trigger == "oversize" {
		// Nothing reaches the page allocator's tracepoint: the kmalloc
		// try is refused for its order, vmalloc for its size.
		now := fmt.Sprintf("vmalloc error: size %d, exceeds total pages", oversizeFds*8)
		before514 := fmt.Sprintf("vmalloc: allocation failure: %d bytes", oversizeFds*8)
		if !strings.Contains(rep.Warning, now) && !strings.Contains(rep.Warning, before514) {
			t.Errorf("warning %q, want %q (or, before 5.14, %q)", rep.Warning, now, before514)
		}
		if got != 0 {
			t.Errorf("%d mm_page_alloc failures, want none", got)
		}
		return
	}
	if !strings.HasPrefix(rep.Warning, comm+": vmalloc error: size ") {
		t.Errorf("warning %q, want a vmalloc error from %s", rep.Warning, comm)
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

func TestWarnedBy(t *testing.T) {
	const comm = "t1wa"
	for msg, want := range map[string]bool{
		"page allocation failure: order:1, mode:0x20":                          true,
		"page allocation failure. order:1, mode:0x20":                          true,
		"vmalloc error: size 12288, failed to allocate pages, mode:0x400cc2":   true,
		"vmalloc: allocation failure: 2147483136 bytes, mode:0x400cc0":         true,
		"vmalloc: allocation failure, allocated 4096 of 8192 bytes, mode:0xd0": true,
		"vmalloc: 4096 bytes":                    false,
		"Out of memory: Killed process 1 (init)": false,
	} {
		if got := warnedBy(comm+": "+msg, comm); got != want {
			t.Errorf("warnedBy(%q) = %v, want %v", comm+": "+msg, got, want)
		}
		if warnedBy("other: "+msg, comm) {
			t.Errorf("warnedBy(%q, %q) = true for another task", "other: "+msg, comm)
		}
	}
}
