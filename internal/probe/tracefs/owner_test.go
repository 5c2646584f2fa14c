package tracefs

import (
	"strings"
	"testing"
)

func TestTopMount(t *testing.T) {
	// 45 is mounted on /sys/kernel/tracing, then 60 over it, then 70 was
	// propagated under 60 (tucked: 60's parent became 70), listed last.
	const mountinfo = `23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
45 23 0:13 / /sys/kernel/tracing rw,relatime - tracefs nodev rw
60 45 0:13 / /sys/kernel/tracing rw,relatime - tracefs nodev rw
88 23 0:50 / /mnt/a\040b rw - tmpfs tmpfs rw
70 45 0:13 / /sys/kernel/tracing rw,relatime shared:5 - tracefs nodev rw
garbage line
`
	tucked := strings.Replace(mountinfo, "60 45 ", "60 70 ", 1)
	for _, c := range []struct {
		table, dir string
		want       uint64
	}{
		{mountinfo, "/sys", 23},
		{mountinfo, "/mnt/a b", 88},
		{strings.Replace(mountinfo, "70 45 ", "70 60 ", 1), "/sys/kernel/tracing", 70},
		{tucked, "/sys/kernel/tracing", 60},
	} {
		if got, err := topMount(strings.NewReader(c.table), c.dir); err != nil || got != c.want {
			t.Errorf("topMount(%s) = %d, %v; want %d", c.dir, got, err, c.want)
		}
	}
	if got, err := topMount(strings.NewReader(mountinfo), "/sys/kernel/debug/tracing"); err == nil {
		t.Errorf("topMount of an unmounted directory = %d, want an error", got)
	}
}
