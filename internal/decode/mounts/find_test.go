package mounts

import (
	"slices"
	"strings"
	"testing"
)

func TestMountPoints(t *testing.T) {
	table := `sysfs /sys sysfs rw,nosuid 0 0
tracefs /sys/kernel/tracing tracefs rw,nosuid 0 0
debugfs /sys/kernel/debug debugfs rw 0 0
tracefs /sys/kernel/debug/tracing tracefs rw 0 0
tracefs /mnt/trace\040here tracefs rw 0 0
short line
`
	got := mountPoints(strings.NewReader(table), "tracefs")
	want := []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing", "/mnt/trace here"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := mountPoints(strings.NewReader(table), "hugetlbfs"); len(got) != 0 {
		t.Errorf("hugetlbfs: %q", got)
	}
}
