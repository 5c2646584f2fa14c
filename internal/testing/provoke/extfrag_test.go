package provoke

import (
	"os"
	"strconv"
	"testing"
)

func TestExtFrag(t *testing.T) {
	requireRoot(t, "reads tracefs")
	comm := testComm("ef")
	c := counter(t, "kmem", "mm_page_alloc_extfrag", `comm == "`+comm+`"`)

	const min = 3
	rep, err := ExtFrag(min, WithComm(comm))
	t.Logf("report: %d events, %d MiB, %v, orders %v", rep.Events, rep.Bytes>>20, rep.Duration, rep.Orders)
	if err != nil {
		t.Fatal(err)
	}
	got := count(t, c)
	if got < min || got != rep.Events {
		t.Errorf("mm_page_alloc_extfrag: counter %d, report %d, want >= %d and equal", got, rep.Events, min)
	}
	hs := hits(t, c)
	checkAttribution(t, rep, hs)
	// Pipe pages are unmovable (0) and fall back to another type. The
	// child makes other allocations too (5.10 once showed an order-1
	// reclaimable slab page of the same thread falling back), so every
	// hit must be a fallback, and most must be the pipe pages'.
	unmovable := 0
	for _, h := range hs {
		if h.Int("alloc_migratetype", -1) == h.Int("fallback_migratetype", -1) {
			t.Errorf("extfrag %s: allocation and fallback migratetype are the same", h.Text)
		}
		if h.Int("alloc_migratetype", -1) == 0 {
			unmovable++
		}
	}
	if 2*unmovable <= len(hs) {
		t.Errorf("%d of %d extfrag events are unmovable allocations falling back, want most (the pipe pages)", unmovable, len(hs))
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(rep.Pid)); !os.IsNotExist(err) {
		t.Errorf("child %d still exists (stat: %v)", rep.Pid, err)
	}
}
