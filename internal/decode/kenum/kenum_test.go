package kenum

import (
	"errors"
	"strings"
	"testing"
)

// TestFromMembers: names come from the kernel's enum, members outside the
// prefix (aliases, counts) are left out, and the first of two members
// with one value wins, as the kernel prints them.
func TestFromMembers(t *testing.T) {
	n := FromMembers("compact_priority", "COMPACT_PRIO_", []Member{
		{Name: "COMPACT_PRIO_SYNC_FULL", Value: 0}, {Name: "MIN_COMPACT_PRIORITY", Value: 0},
		{Name: "COMPACT_PRIO_SYNC_LIGHT", Value: 1}, {Name: "DEF_COMPACT_PRIORITY", Value: 1},
		{Name: "COMPACT_PRIO_ASYNC", Value: 2}, {Name: "INIT_COMPACT_PRIORITY", Value: 2},
	}, nil)
	for v, want := range map[int64]string{0: "sync_full", 1: "sync_light", 2: "async", 7: "7"} {
		if got := n.Name(v); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
	if v, ok := n.Value("async"); !ok || v != 2 {
		t.Errorf("Value(async) = %d, %v", v, ok)
	}
	if n.Source() != "kernel BTF" {
		t.Errorf("source %q", n.Source())
	}
}

// TestFromMembersMissing: without the enum, values stay numbers and Source
// says why; nothing is made up.
func TestFromMembersMissing(t *testing.T) {
	for _, n := range []*Names{
		FromMembers("compact_result", "COMPACT_", []Member{{Name: "OTHER", Value: 2}}, nil),
		FromMembers("compact_result", "COMPACT_", nil, errors.New("no kernel BTF")),
		nil,
	} {
		if got := n.Name(2); got != "2" {
			t.Errorf("name %q, want the number", got)
		}
		if !strings.HasPrefix(n.Source(), "unavailable") {
			t.Errorf("source %q", n.Source())
		}
		if _, ok := n.Value("deferred"); ok {
			t.Error("a missing table knows a value")
		}
	}
}
