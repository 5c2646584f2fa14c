package hugepages

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/present/text"
)

// checkGolden compares out with testdata/name, which -update rewrites.
func checkGolden(t *testing.T, name, out string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
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

// TestWriteTextGolden pins the text report of the oracle tree, as
// `memtrace hugepages --plan 64G --processes 1000` writes it (cmd/memtrace
// checks that the command's output is this file, byte for byte).
func TestWriteTextGolden(t *testing.T) {
	var b strings.Builder
	if err := WriteText(&b, oracleReport(t)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	checkGolden(t, "oracle.golden.txt", out)
	// The seed's example, with the correct never-used count (8441, not
	// the article's 8841).
	for _, s := range []string{"13007  11813  3372", "1194    4566                8441        16.5 GiB", "recommended vm.nr_hugepages = 5083", "vm.nr_hugepages = 32778"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if strings.ContainsRune(out, 0x1b) || !strings.Contains(out, `x\x1b[2Jevil`) {
		t.Error("the escape in a process name reached the terminal unescaped")
	}
}

// hostileComms are process names a process can give itself: a bidi
// override (U+202E), isolates, a C1 CSI (U+009B), an OSC title sequence,
// invalid UTF-8 and a literal backslash sequence that must not pass for an
// escaped ESC.
var hostileComms = []string{"gnp\u202eexe.sh", "\u2067rtl\u2069", "csi\u009b2J", "\x1b]0;pwned\x07", "bad\xffname", `\x1b`}

// TestWriteTextEscapesHostileNames: every name in the tables and the
// warnings is escaped with text.Escape, and nothing a terminal would act on
// reaches the output.
func TestWriteTextEscapesHostileNames(t *testing.T) {
	r := &Report{DefaultPageSizeKB: 2048, MinSharedBytes: 64 << 20}
	yes := true
	seg := SegmentUse{OnHugePages: &yes, PageSizeKB: 2048}
	seg.ShmID, seg.Size = 7, 1<<30
	for i, comm := range hostileComms {
		p := Process{LargeSharedBaseKB: 1 << 20}
		p.Pid, p.Comm = 100+i, comm
		r.Processes = append(r.Processes, p)
		seg.Attachers = append(seg.Attachers, Attacher{Pid: 100 + i, Comm: comm})
	}
	r.Segments = []SegmentUse{seg}
	r.Errors = []string{"reading /proc/100/smaps of " + hostileComms[0] + ": permission denied"}
	var b strings.Builder
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, r := range out {
		if r != '\n' && text.Unsafe(r) {
			t.Errorf("the report holds %U", r)
		}
	}
	for _, c := range hostileComms {
		if !strings.Contains(out, text.Escape(c)) {
			t.Errorf("the report lacks the escaped name %q", text.Escape(c))
		}
	}
	if strings.Contains(out, ` \x1b `) {
		t.Error(`the report shows the name "\x1b" as if it were an escaped ESC`)
	}
	checkGolden(t, "hostile.golden", out)
}
