package main

import (
	"os"
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

func sums(alloc string, rejected string, companions ...string) []proto.Summary {
	h := proto.Hook{Signal: "alloc", Hook: alloc, Attached: true, Companions: companions}
	if rejected != "" {
		h.Rejected = []string{rejected}
	}
	return []proto.Summary{{Variant: "default", Hooks: []proto.Hook{h}}}
}

func TestCheckHooks(t *testing.T) {
	const refused = "fexit/<allocator>: loading fexit/__alloc_frozen_pages_noprof: operation not permitted"
	cases := []struct {
		kernel string
		sums   []proto.Summary
		bad    []string // substrings of the unmet expectations
	}{
		{"6.1.0-56-amd64", sums("fexit/__alloc_pages", "", "kprobe/warn_alloc"), nil},
		{"6.1.0-56-amd64", sums("tp_btf/mm_page_alloc", "", "kprobe/warn_alloc"), []string{"should use fexit/"}},
		{"6.1.0-56-amd64", sums("fexit/__alloc_pages", ""), []string{"kprobe/warn_alloc should be attached"}},
		{"6.1.0-57-arm64", sums("tp_btf/mm_page_alloc", "fexit/<allocator>: attaching tracing program alloc_fail_fexit: create raw tracepoint: not supported", "kprobe/warn_alloc"), nil},
		{"6.1.0-57-arm64", sums("tp_btf/mm_page_alloc", "", "kprobe/warn_alloc"), []string{"fexit should be refused here"}},
		{"6.1.0-57-arm64", sums("fexit/__alloc_pages", "", "kprobe/warn_alloc"), []string{"fexit should be refused here", "should use tp_btf/"}},
		{"6.1.0-57-arm64", sums("tp_btf/mm_page_alloc", "fexit/<allocator>: not supported"), []string{"kprobe/warn_alloc should be attached"}},
		{"5.10.0-46-amd64", sums("fexit/__alloc_pages_nodemask", "", "kprobe/warn_alloc"), nil},
		{"5.10.0-46-amd64", sums("tp_btf/mm_page_alloc", "", "kprobe/warn_alloc"), []string{"should use fexit/"}},
		{"5.10.0-46-amd64", sums("fexit/__alloc_pages_nodemask", ""), []string{"kprobe/warn_alloc should be attached"}},
		// Where fexit is refused (the CI host), tp_btf, and the reason.
		{"6.18.44-fc", sums("tp_btf/mm_page_alloc", refused), nil},
		{"6.18.44-fc", sums("tp_btf/mm_page_alloc", ""), []string{"no reason why not fexit"}},
		{"6.18.44-fc", sums("tracepoint/kmem/mm_page_alloc", refused), []string{"should use tp_btf/"}},
		{"6.8.0-generic", sums("fexit/__alloc_pages_noprof", ""), nil},
		{"6.8.0-generic", nil, []string{"no result of the default variant"}},
	}
	for _, c := range cases {
		got := checkHooks(c.kernel, c.sums)
		if len(got) != len(c.bad) {
			t.Errorf("%s %v: %q, want %d problems", c.kernel, c.sums, got, len(c.bad))
			continue
		}
		for i, want := range c.bad {
			if !strings.Contains(got[i], want) {
				t.Errorf("%s: %q, want %q", c.kernel, got[i], want)
			}
		}
	}
}

// TestReadmeKernels: the README's supported-kernels table is the one the
// last make test-kernels run wrote to docs/kernels.md.
func TestReadmeKernels(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/kernels.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readmeSection(readme)
	if err != nil {
		t.Fatal(err)
	}
	want := firstTable(string(doc))
	if want == "" || got != want {
		t.Errorf("README's supported kernels differ from docs/kernels.md (run go run ./test/vm -docs docs/kernels.md):\nREADME:\n%s\ndocs/kernels.md:\n%s", got, want)
	}
}

// The guest has no Go toolchain: the process tests of cmd/memtrace run
// the memtrace packed into the initramfs.
func TestPlanGivesMemtraceBin(t *testing.T) {
	plan := makePlan(options{cgroup: "v1", e2e: true, pkgs: []string{"./cmd/memtrace"}}, machines["amd64"])
	for _, st := range plan.Steps {
		if st.Name == "cmd/memtrace" && !slices.Contains(st.Env, "MEMTRACE_BIN=/vm/bin/memtrace") {
			t.Errorf("cmd/memtrace step env %q", st.Env)
		}
	}
}
