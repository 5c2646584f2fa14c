package verify

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestWriteText checks the text report of a fallback: the pairing, the
// cause and its fix, the kernel's view, and the escaping of names.
func TestWriteText(t *testing.T) {
	addr := event.Hex(0x7f0000000000)
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Result{
		Outcome: Outcome{Verdict: FellBack, Summary: "fell back to base pages: 144 MiB requested with MAP_HUGETLB (2 MiB pages) failed with ENOMEM, then mapped with 4 KiB pages",
			Findings: []string{"post\x1bgres[7]: fell back: …"}},
		Target: `command ["pg_ctl"] and its children`, Follow: "cgroup /sys/fs/cgroup/memtrace-verify-1 (v2), filtered in the kernel",
		Start: start, End: start.Add(1500 * time.Millisecond), StopReason: StopCommandExited,
		Command: &CommandResult{Argv: []string{"pg_ctl"}, Pid: 6, Exited: true},
		MinSize: 64 << 20,
		Calls: []Call{
			{Seq: 0, Time: start, Pid: 7, Comm: "post\x1bgres", Call: event.CallMmap, Size: 144 << 20, PageSize: 2 << 20, Huge: true,
				FlagNames: "MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB", Errno: "ENOMEM", Large: true,
				Cause: &Cause{Kind: "pool_too_small", Text: "pool too small: needed 72 pages of 2 MiB", Advice: "raise vm.nr_hugepages to at least 72"}},
			{Seq: 1, Time: start, Pid: 7, Comm: "post\x1bgres", Call: event.CallMmap, Size: 143 << 20, PageSize: 4096, OK: true, Address: &addr,
				FlagNames: "MAP_SHARED|MAP_ANONYMOUS", AfterHugeFailure: true, Large: true},
		},
		Fallbacks:     []Fallback{{Pid: 7, Comm: "post\x1bgres", Failed: []int{0}, Replacement: 1, Summary: "fell back: 144 MiB …"}},
		Confirmations: []Confirmation{{Seq: 1, Pid: 7, What: "mapping at 0x7f0000000000", Found: true, SizeKB: 143 << 10, KernelPageSizeKB: 4, Agrees: true}},
	}
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
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

// hostileComms are process names a process can give itself: a bidi
// override (U+202E), isolates, a C1 CSI (U+009B), an OSC title sequence,
// invalid UTF-8 and a literal backslash sequence that must not pass for an
// escaped ESC.
var hostileComms = []string{"gnp\u202eexe.sh", "\u2067rtl\u2069", "csi\u009b2J", "\x1b]0;pwned\x07", "bad\xffname", `\x1b`}

// TestWriteTextEscapesHostileNames: the live call lines and the report
// escape every name with text.Escape, and equal their golden file.
func TestWriteTextEscapesHostileNames(t *testing.T) {
	local := time.Local
	time.Local = time.UTC
	defer func() { time.Local = local }()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Result{
		Outcome: Outcome{Verdict: FellBack, Summary: "fell back: " + hostileComms[0]},
		Target:  "processes named " + hostileComms[0], Follow: "comm filter in the kernel",
		Start: start, End: start.Add(time.Second), StopReason: StopCommandExited, MinSize: 64 << 20,
	}
	var live strings.Builder
	for i, comm := range hostileComms {
		c := Call{Seq: i, Time: start, Pid: uint32(10 + i), Comm: comm, Call: event.CallMmap, Size: 144 << 20,
			PageSize: 2 << 20, Huge: true, FlagNames: "MAP_SHARED|MAP_HUGETLB", Errno: "ENOMEM", Large: true}
		r.Calls = append(r.Calls, c)
		r.Fallbacks = append(r.Fallbacks, Fallback{Pid: c.Pid, Comm: comm, Summary: "fell back"})
		r.Findings = append(r.Findings, comm+" fell back")
		live.WriteString(CallLine(c) + "\n")
	}
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	out := live.String() + "\n" + b.String()
	for _, r := range out {
		if r != '\n' && text.Unsafe(r) {
			t.Errorf("the output holds %U", r)
		}
	}
	for _, c := range hostileComms {
		if !strings.Contains(out, text.Escape(c)) {
			t.Errorf("the output lacks the escaped name %q", text.Escape(c))
		}
	}
	if strings.Contains(out, ` \x1b `) {
		t.Error(`the output shows the name "\x1b" as if it were an escaped ESC`)
	}
	golden := filepath.Join("testdata", "hostile.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading golden file (-update writes it): %v", err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s (run with -update and review the diff):\n%s", golden, out)
	}
}
