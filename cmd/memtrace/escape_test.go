package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/command/verify"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
)

var updateHostile = flag.Bool("update-hostile", false, "rewrite testdata/*-hostile.golden")

// hostileComms are process names a process can give itself: a bidi
// override (U+202E), isolates, a C1 CSI (U+009B), an OSC title sequence,
// invalid UTF-8 and a literal backslash sequence that must not pass for an
// escaped ESC.
var hostileComms = []string{"gnp\u202eexe.sh", "\u2067rtl\u2069", "csi\u009b2J", "\x1b]0;pwned\x07", "bad\xffname", `\x1b`}

// checkHostile checks that out holds every hostile name escaped, no rune a
// terminal would act on, and equals its golden file.
func checkHostile(t *testing.T, name, out string) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && text.Unsafe(r) {
			t.Errorf("%s holds %U", name, r)
		}
	}
	for _, c := range hostileComms {
		if !strings.Contains(out, text.Escape(c)) {
			t.Errorf("%s lacks the escaped name %q", name, text.Escape(c))
		}
	}
	if strings.Contains(out, ` \x1b `) {
		t.Errorf("%s shows the name `\\x1b` as if it were an escaped ESC", name)
	}
	golden := filepath.Join("testdata", name+"-hostile.golden")
	if *updateHostile {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("reading golden file (-update-hostile writes it): %v", err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s (-update-hostile rewrites it):\n%s", golden, out)
	}
}

func TestVerifyEscapesHostileNames(t *testing.T) {
	local := time.Local
	time.Local = time.UTC
	defer func() { time.Local = local }()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &verify.Result{
		Outcome: verify.Outcome{Verdict: verify.FellBack, Summary: "fell back: " + hostileComms[0]},
		Target:  "processes named " + hostileComms[0], Follow: "comm filter in the kernel",
		Start: start, End: start.Add(time.Second), StopReason: verify.StopCommandExited, MinSize: 64 << 20,
	}
	var live strings.Builder
	for i, comm := range hostileComms {
		c := verify.Call{Seq: i, Time: start, Pid: uint32(10 + i), Comm: comm, Call: event.CallMmap, Size: 144 << 20,
			PageSize: 2 << 20, Huge: true, FlagNames: "MAP_SHARED|MAP_HUGETLB", Errno: "ENOMEM", Large: true}
		r.Calls = append(r.Calls, c)
		r.Fallbacks = append(r.Fallbacks, verify.Fallback{Pid: c.Pid, Comm: comm, Summary: "fell back"})
		r.Findings = append(r.Findings, comm+" fell back")
		live.WriteString(verifyCallLine(c) + "\n")
	}
	var b strings.Builder
	if err := renderVerify(&b, r); err != nil {
		t.Fatal(err)
	}
	checkHostile(t, "verify", live.String()+"\n"+b.String())
}

func TestHugepagesEscapesHostileNames(t *testing.T) {
	r := &hugepages.Report{DefaultPageSizeKB: 2048, MinSharedBytes: 64 << 20}
	yes := true
	seg := hugepages.SegmentUse{OnHugePages: &yes, PageSizeKB: 2048}
	seg.ShmID, seg.Size = 7, 1<<30
	for i, comm := range hostileComms {
		p := hugepages.Process{LargeSharedBaseKB: 1 << 20}
		p.Pid, p.Comm = 100+i, comm
		r.Processes = append(r.Processes, p)
		seg.Attachers = append(seg.Attachers, hugepages.Attacher{Pid: 100 + i, Comm: comm})
	}
	r.Segments = []hugepages.SegmentUse{seg}
	r.Errors = []string{"reading /proc/100/smaps of " + hostileComms[0] + ": permission denied"}
	var b strings.Builder
	if err := renderHugepages(&b, r); err != nil {
		t.Fatal(err)
	}
	checkHostile(t, "hugepages", b.String())
}
