package main

import (
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/verify"
	"github.com/memtrace/memtrace/internal/event"
)

func TestVerifyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"verify"},
		{"verify", "--comm", "postgres", "--pid", "1"},
		{"verify", "--comm", "postgres", "--", "true"},
		{"verify", "--comm", "a-name-longer-than-15"},
		{"verify", "--pid", "-4"},
		{"verify", "--comm", "x", "--min-size", "huge"},
		{"verify", "--comm", "x", "--min-size", "0"},
		{"verify", "--comm", "x", "--timeout", "-1s"},
		{"verify", "--nosuchflag"},
	} {
		code, _, errs := hpRun(args...)
		if code != exitUsage || !strings.Contains(errs, "Usage:") {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errs)
		}
	}
}

// TestRenderVerify checks the text report of a fallback: the pairing, the
// cause and its fix, the kernel's view, and the escaping of names.
func TestRenderVerify(t *testing.T) {
	addr := event.Hex(0x7f0000000000)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &verify.Result{
		Outcome: verify.Outcome{Verdict: verify.FellBack, Summary: "fell back to base pages: 144 MiB requested with MAP_HUGETLB (2 MiB pages) failed with ENOMEM, then mapped with 4 KiB pages",
			Findings: []string{"post\x1bgres[7]: fell back: …"}},
		Target: `command ["pg_ctl"] and its children`, Follow: "cgroup /sys/fs/cgroup/memtrace-verify-1 (v2), filtered in the kernel",
		Start: start, End: start.Add(1500 * time.Millisecond), StopReason: verify.StopCommandExited,
		Command: &verify.CommandResult{Argv: []string{"pg_ctl"}, Pid: 6, Exited: true},
		MinSize: 64 << 20,
		Calls: []verify.Call{
			{Seq: 0, Time: start, Pid: 7, Comm: "post\x1bgres", Call: event.CallMmap, Size: 144 << 20, PageSize: 2 << 20, Huge: true,
				FlagNames: "MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB", Errno: "ENOMEM", Large: true,
				Cause: &verify.Cause{Kind: "pool_too_small", Text: "pool too small: needed 72 pages of 2 MiB", Advice: "raise vm.nr_hugepages to at least 72"}},
			{Seq: 1, Time: start, Pid: 7, Comm: "post\x1bgres", Call: event.CallMmap, Size: 143 << 20, PageSize: 4096, OK: true, Address: &addr,
				FlagNames: "MAP_SHARED|MAP_ANONYMOUS", AfterHugeFailure: true, Large: true},
		},
		Fallbacks:     []verify.Fallback{{Pid: 7, Comm: "post\x1bgres", Failed: []int{0}, Replacement: 1, Summary: "fell back: 144 MiB …"}},
		Confirmations: []verify.Confirmation{{Seq: 1, Pid: 7, What: "mapping at 0x7f0000000000", Found: true, SizeKB: 143 << 10, KernelPageSizeKB: 4, Agrees: true}},
	}
	var b strings.Builder
	if err := renderVerify(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"stopped: command_exited after 1.5s",
		"the command (pid 6) exited with status 0",
		"ENOMEM",
		"0x7f0000000000",
		"after a failed huge request",
		`post\x1bgres[7]: fell back: 144 MiB …`,
		"#0 mmap 144 MiB ENOMEM: pool too small: needed 72 pages of 2 MiB",
		"fix: raise vm.nr_hugepages to at least 72",
		"mapping at 0x7f0000000000  4 KiB",
		"Verdict: FELL BACK: fell back to base pages",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Errorf("raw escape in the report:\n%s", out)
	}
}
