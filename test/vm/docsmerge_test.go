package main

import (
	"strings"
	"testing"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// A run of one kernel (-kernel) rewrites that kernel's rows and keeps the
// others' from the file, in place; the intro names them all.
func TestMergeDocsOneKernel(t *testing.T) {
	run := func(release, distro, alloc string, entry kernelEntry) *runResult {
		return &runResult{
			k: &kernel{}, kernel: release, pkg: "linux-image-" + release, distro: distro, accel: "tcg", cgroup: "v1", entry: entry,
			stream: &proto.Stream{
				Done:    true,
				Results: []proto.Result{{Name: "e2e"}, {Name: "pkg/gfp", Output: "--- PASS: TestA (0.00s)\n"}},
				Files:   e2eFiles(alloc, "kprobe/warn_alloc"),
			},
		}
	}
	bookworm := run("6.1.0-57-amd64", "Debian 12", "fexit/__alloc_pages", kernelEntry{"bookworm", "linux-image-amd64"})
	trixieOld := run("6.12.118+deb13-amd64", "Debian 13", "fexit/__alloc_pages_noprof", kernelEntry{"trixie", "linux-image-amd64"})
	trixieOld.stream.Results[1].Output = "--- FAIL: TestA (0.00s)\n"
	arm := run("6.1.0-57-arm64", "Debian 12", "tp_btf/mm_page_alloc", kernelEntry{"bookworm", "linux-image-arm64"})
	host := &hostResult{kernel: "6.18.44-fc", summaries: summaries(e2eFiles("tp_btf/mm_page_alloc"))}
	old := kernelsDoc([]*runResult{bookworm, trixieOld, arm}, host, options{})

	trixie := run("6.12.118+deb13-amd64", "Debian 13", "fexit/__alloc_pages_noprof", kernelEntry{"trixie", "linux-image-amd64"})
	fresh := kernelsDoc([]*runResult{trixie}, nil, options{})
	got := mergeDocs(old, fresh, "trixie:linux-image-amd64")

	tabs := tableRows(got)
	if len(tabs) != 2 {
		t.Fatalf("want 2 tables:\n%s", got)
	}
	for i, want := range [][]string{
		{"6.1.0-57-amd64", "6.12.118+deb13-amd64", "6.1.0-57-arm64", "6.18.44-fc"},
		{"6.1.0-57-amd64", "6.12.118+deb13-amd64", "6.1.0-57-arm64", "6.18.44-fc"},
	} {
		var keys []string
		for _, r := range tabs[i] {
			k, _ := rowCells(r)
			keys = append(keys, k)
		}
		if strings.Join(keys, " ") != strings.Join(want, " ") {
			t.Errorf("table %d: kernels %v, want %v\n%s", i+1, keys, want, got)
		}
	}
	if strings.Contains(got, "FAIL") || strings.Contains(got, "failed**") {
		t.Errorf("the old 6.12 row survived:\n%s", got)
	}
	if !strings.Contains(firstTable(got), "pkg/gfp 1/1") {
		t.Errorf("6.12's new row is missing:\n%s", got)
	}
	intro := strings.Join(strings.Fields(got[:strings.Index(got, "Hooks memtrace chose")]), " ")
	for _, want := range []string{
		"memtrace is tested on the CI host's kernel and on Debian 12's 6.1, Debian 13's 6.12 and Debian 12's 6.1 on arm64,",
		"The last run (`-kernel trixie:linux-image-amd64`) booted 6.12.118+deb13-amd64 only;",
	} {
		if !strings.Contains(intro, want) {
			t.Errorf("intro lacks %q:\n%s", want, intro)
		}
	}
	if !strings.HasPrefix(got, "# Supported kernels\n\n") || strings.Count(got, "\n| kernel |") != 2 {
		t.Errorf("malformed document:\n%s", got)
	}

	// A kernel new to the file comes after the other guests, before the host.
	bullseye := run("5.10.0-46-amd64", "Debian 11", "fexit/__alloc_pages_nodemask", kernelEntry{"bullseye", "linux-image-amd64"})
	got = mergeDocs(old, kernelsDoc([]*runResult{bullseye}, nil, options{}), "bullseye:linux-image-amd64")
	var keys []string
	for _, r := range tableRows(got)[0] {
		k, _ := rowCells(r)
		keys = append(keys, k)
	}
	if want := "6.1.0-57-amd64 6.12.118+deb13-amd64 6.1.0-57-arm64 5.10.0-46-amd64 6.18.44-fc"; strings.Join(keys, " ") != want {
		t.Errorf("new kernel: %v, want %s", keys, want)
	}

	// A run of every kernel the file lists is the file, whatever was there.
	all := kernelsDoc([]*runResult{bookworm, trixie, arm}, host, options{})
	if got := mergeDocs(old, all, defaultKernels); got != all {
		t.Errorf("a full run was merged:\n%s", got)
	}
	// A new host kernel replaces the old host's rows.
	host2 := &hostResult{kernel: "6.19.1-fc", summaries: host.summaries}
	got = mergeDocs(old, kernelsDoc([]*runResult{trixie}, host2, options{}), "trixie:linux-image-amd64")
	if strings.Contains(got, "6.18.44-fc") || !strings.Contains(got, "| 6.19.1-fc | CI host |") {
		t.Errorf("host not replaced:\n%s", got)
	}
}
