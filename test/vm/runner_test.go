package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

func TestCountTests(t *testing.T) {
	out := `=== RUN   TestA
--- PASS: TestA (0.01s)
=== RUN   TestB
=== RUN   TestB/sub
    b_test.go:9: boom
    --- FAIL: TestB/sub (0.00s)
--- FAIL: TestB (0.00s)
=== RUN   TestC
    c_test.go:3: needs cgroup v2
--- SKIP: TestC (0.00s)
FAIL
`
	c := countTests(out)
	if c.pass != 1 || c.fail != 1 || c.skip != 1 {
		t.Errorf("counts %+v", c)
	}
	if !slices.Equal(c.failed, []string{"TestB/sub", "TestB"}) {
		t.Errorf("failed %q", c.failed)
	}
	if len(c.skipped) != 1 || c.skipped[0] != "TestC: c_test.go:3: needs cgroup v2" {
		t.Errorf("skipped %q", c.skipped)
	}
}

func sums(def, fexit string, companions ...string) []proto.Summary {
	return []proto.Summary{
		{Variant: "default", Hooks: []proto.Hook{{Signal: "alloc", Hook: def, Attached: true, Companions: companions}}},
		{Variant: "fexit", Hooks: []proto.Hook{{Signal: "alloc", Hook: fexit, Attached: true}}},
	}
}

func TestCheckHooks(t *testing.T) {
	cases := []struct {
		kernel string
		sums   []proto.Summary
		bad    []string // substrings of the unmet expectations
	}{
		{"6.1.0-56-amd64", sums("fexit/__alloc_pages", "fexit/__alloc_pages", "kprobe/warn_alloc"), nil},
		{"6.1.0-56-amd64", sums("tp_btf/mm_page_alloc", "fexit/__alloc_pages", "kprobe/warn_alloc"), []string{"should use fexit/"}},
		{"6.1.0-56-amd64", sums("fexit/__alloc_pages", "fexit/__alloc_pages"), []string{"kprobe/warn_alloc should be attached"}},
		// Where fexit is refused (the CI host), tp_btf.
		{"6.18.44-fc", sums("tp_btf/mm_page_alloc", "tp_btf/mm_page_alloc"), nil},
		{"6.18.44-fc", sums("tracepoint/kmem/mm_page_alloc", "tp_btf/mm_page_alloc"), []string{"should use tp_btf/"}},
		// Elsewhere, whatever --alloc-hook fexit could attach.
		{"6.8.0-generic", sums("tp_btf/mm_page_alloc", "fexit/__alloc_pages_noprof"), []string{"should use fexit/"}},
	}
	for _, c := range cases {
		got := checkHooks(c.kernel, c.sums)
		if len(got) != len(c.bad) {
			t.Errorf("%s %v: %q, want %d problems", c.kernel, c.sums[0].Hooks, got, len(c.bad))
			continue
		}
		for i, want := range c.bad {
			if !strings.Contains(got[i], want) {
				t.Errorf("%s: %q, want %q", c.kernel, got[i], want)
			}
		}
	}
}
