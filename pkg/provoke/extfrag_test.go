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
	for _, h := range hs {
		// Pipe pages are unmovable (0) and fall back to another type.
		if h.Int("alloc_migratetype", -1) != 0 || h.Int("fallback_migratetype", 0) == 0 {
			t.Errorf("extfrag %s, want an unmovable allocation falling back", h.Text)
		}
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(rep.Pid)); !os.IsNotExist(err) {
		t.Errorf("child %d still exists (stat: %v)", rep.Pid, err)
	}
}
