package kmsg

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/testing/synthlog"
)

// parseReader parses a text log the way ReadFile does, with every
// failure kept for the checks.
func parseReader(t *testing.T, r io.Reader, p *Parser) Result {
	t.Helper()
	if err := ReadText(r, TextOptions{Now: fileNow, Location: time.UTC}, p.Feed); err != nil {
		t.Fatal(err)
	}
	return p.Result()
}

// TestUnparsedHeadersCounted: lines that name an allocation failure in a
// form the parser does not read are counted, with a few kept to show, not
// dropped as if the log held none.
func TestUnparsedHeadersCounted(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "[%d.000001] swapper/0: page allocation failure: order:%c, mode:0x20\n", 100+i, 'a'+i%26)
		b.WriteString("[100.000002] eth0: link up\n")
	}
	b.WriteString("[200.000001] x: vmalloc error: size many, failed\n")
	var p Parser
	r := parseReader(t, strings.NewReader(b.String()), &p)
	if r.Failures != 0 || len(r.Groups) != 0 {
		t.Errorf("%d failures in %d groups from unparseable lines", r.Failures, len(r.Groups))
	}
	if r.Unparsed != 5001 || len(r.UnparsedExamples) != maxUnparsedExamples ||
		r.UnparsedExamples[0] != "swapper/0: page allocation failure: order:a, mode:0x20" {
		t.Errorf("unparsed %d, examples %q", r.Unparsed, r.UnparsedExamples)
	}
}

// TestGroupsBounded: a log in which no two reports group together keeps
// MaxGroups groups and counts the rest, each group apart.
func TestGroupsBounded(t *testing.T) {
	const n = MaxGroups + 1000
	var p Parser
	r := parseReader(t, synthlog.New(synthlog.Options{Reports: n, Distinct: true}), &p)
	if r.Failures != n || len(r.Groups) != MaxGroups {
		t.Fatalf("%d failures, %d groups; want %d, %d", r.Failures, len(r.Groups), n, MaxGroups)
	}
	if r.Other != (Overflow{Groups: 1000, GroupsExact: true, Reports: 1000}) {
		t.Errorf("other = %+v", r.Other)
	}
	// Past maxOther the other groups are counted together.
	g := Grouper{maxGroups: 2, maxOther: 3}
	for i := range 10 {
		g.Add(Failure{Kind: KindPage, Comm: fmt.Sprint("t", i)})
	}
	groups, other := g.Groups()
	if len(groups) != 2 || other != (Overflow{Groups: 3, GroupsExact: false, Reports: 8}) {
		t.Errorf("%d groups, other %+v", len(groups), other)
	}
}

// TestFrequentGroupTakenBackIn: a group that turns frequent after the
// bound was reached replaces the least frequent one kept, with its count
// and first time whole.
func TestFrequentGroupTakenBackIn(t *testing.T) {
	g := Grouper{maxGroups: 3}
	at := func(s int) Stamp { return Stamp{Uptime: time.Duration(s) * time.Second, HasUptime: true} }
	for i, c := range []string{"a", "b", "b", "c", "c", "d", "d", "d"} {
		g.Add(Failure{Kind: KindPage, Comm: c, Stamp: at(i)})
	}
	groups, other := g.Groups()
	var names []string
	for _, x := range groups {
		names = append(names, fmt.Sprint(x.Comm, x.Count))
	}
	if strings.Join(names, " ") != "d3 c2 b2" || !groups[0].Partial || groups[0].First != at(5) {
		t.Errorf("groups %q, first of d %+v partial %v", names, groups[0].First, groups[0].Partial)
	}
	if other != (Overflow{Groups: 1, GroupsExact: true, Reports: 1}) {
		t.Errorf("other %+v", other)
	}
}

// TestExamplesBounded: one group of many reports keeps a bounded list of
// tasks and one example with a cut trace and clipped fields.
func TestExamplesBounded(t *testing.T) {
	var b strings.Builder
	long := strings.Repeat("GFP_X|", 400)
	for i := range 200 {
		fmt.Fprintf(&b, "[%d.000001] kworker/%d:1: page allocation failure: order:1, mode:0x20(%s), nodemask=(null)\n", 100+i, i, long)
		fmt.Fprintf(&b, "[%d.000002] CPU: 1 PID: %d Comm: kworker/%d:1 Not tainted 6.%d.0-%s #1\n", 100+i, 1000+i, i, i, strings.Repeat("r", 2000))
		b.WriteString("[100.000003] Call Trace:\n")
		for j := range 300 {
			fmt.Fprintf(&b, "[100.000004]  f%d+0x1/0x2\n", j)
		}
	}
	var p Parser
	r := parseReader(t, strings.NewReader(b.String()), &p)
	if len(r.Groups) != 1 {
		t.Fatalf("%d groups", len(r.Groups))
	}
	g := r.Groups[0]
	ex := g.Example
	if g.Count != 200 || len(g.Comms) != maxListed || len(g.PIDs) != maxListed || len(g.Releases) != maxListed {
		t.Errorf("count %d, %d comms, %d pids, %d releases", g.Count, len(g.Comms), len(g.PIDs), len(g.Releases))
	}
	if len(ex.Trace) != maxExampleFrames || ex.TraceCut != maxFrames-maxExampleFrames {
		t.Errorf("example trace %d frames, %d cut", len(ex.Trace), ex.TraceCut)
	}
	if len(ex.Line) > maxLine || len(ex.ModeText) > maxField || len(ex.Release) > maxField || len(g.ModeText) > maxField {
		t.Errorf("line %d, mode text %d, release %d bytes", len(ex.Line), len(ex.ModeText), len(ex.Release))
	}
}

// TestSinceGroupsOnlyTheWindow: failures before Since are counted, not
// grouped; those without a wall time are grouped and called undated.
func TestSinceGroupsOnlyTheWindow(t *testing.T) {
	log := "May  1 10:00:00 h kernel: a: page allocation failure: order:0, mode:0x20\n" +
		"May  2 10:00:00 h kernel: b: page allocation failure: order:0, mode:0x20\n" +
		"[5.000000] c: page allocation failure: order:0, mode:0x20\n"
	p := Parser{Since: time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)}
	r := parseReader(t, strings.NewReader(log), &p)
	if r.Failures != 3 || r.Before != 1 || r.Undated != 1 || len(r.Groups) != 2 {
		t.Errorf("failures %d, before %d, undated %d, groups %d", r.Failures, r.Before, r.Undated, len(r.Groups))
	}
}

// endless is a source that never ends: report after report, then never
// a newline again.
type endless struct{ n int }

func (e *endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'x'
	}
	e.n += len(b)
	return len(b), nil
}

// TestEndlessReaderStops: a source that is not a regular file is read up
// to MaxBytes, and the log says it stopped there.
func TestEndlessReaderStops(t *testing.T) {
	src := &endless{}
	l, err := ReadFile(context.Background(), "-", src, FileOptions{MaxBytes: 3 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Truncated || l.Bytes != 3<<20 || l.MaxBytes != 3<<20 || src.n > 4<<20 {
		t.Errorf("truncated %v, read %d of %d (source gave %d)", l.Truncated, l.Bytes, l.MaxBytes, src.n)
	}
	// A real device, with the default bound.
	l, err = ReadFile(context.Background(), "/dev/zero", nil, FileOptions{})
	if err != nil {
		t.Skipf("no /dev/zero: %v", err)
	}
	if !l.Truncated || l.Bytes != DefaultMaxBytes || l.Regular {
		t.Errorf("/dev/zero: truncated %v, read %d, regular %v", l.Truncated, l.Bytes, l.Regular)
	}
}

// TestLongLineBounded: a line without end costs maxLineBytes, not its
// length.
func TestLongLineBounded(t *testing.T) {
	var longest int
	err := ReadText(io.LimitReader(&endless{}, 50<<20), TextOptions{}, func(r Record) { longest = max(longest, len(r.Text)) })
	if err != nil || longest > maxLineBytes {
		t.Errorf("error %v, longest record %d bytes", err, longest)
	}
}

// TestReadFileFIFO reads a log through a named pipe, and Ctrl-C ends the
// wait for a writer and a read that would wait forever.
func TestReadFileFIFO(t *testing.T) {
	dir := t.TempDir()
	mkfifo := func(name string) string {
		p := filepath.Join(dir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		return p
	}
	seed, err := os.ReadFile("testdata/seed-000.log")
	if err != nil {
		t.Fatal(err)
	}
	fifo := mkfifo("whole")
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			w.Write(seed)
			w.Close()
		}
	}()
	l, err := ReadFile(context.Background(), fifo, nil, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Failures != 2 || l.Truncated || l.Interrupted || l.Regular || l.Bytes != int64(len(seed)) {
		t.Errorf("failures %d, truncated %v, interrupted %v, regular %v, bytes %d", l.Failures, l.Truncated, l.Interrupted, l.Regular, l.Bytes)
	}

	// No writer: canceling ends the wait in open.
	nobody := mkfifo("nobody")
	t.Cleanup(func() {
		// Let the open left waiting return (and close what it opened).
		if fd, err := unix.Open(nobody, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			unix.Close(fd)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadFile(ctx, nobody, nil, FileOptions{}); err == nil || !strings.Contains(err.Error(), "waiting for a writer") {
		t.Errorf("error %v", err)
	}

	// A writer that writes the log and then nothing, without closing:
	// canceling ends the read, and what was read is reported.
	quiet := mkfifo("quiet")
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *Log, 1)
	go func() {
		l, _ := ReadFile(ctx, quiet, nil, FileOptions{})
		done <- l
	}()
	w, err := os.OpenFile(quiet, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(seed); err != nil {
		t.Fatal(err)
	}
	// Wait until the reader has taken every byte out of the pipe.
	for i := 0; ; i++ {
		n, err := unix.IoctlGetInt(int(w.Fd()), unix.TIOCINQ) // FIONREAD
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if i == 1000 {
			t.Fatalf("%d bytes still unread", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	l = <-done
	if l == nil || !l.Interrupted || l.Bytes != int64(len(seed)) || l.Failures != 2 {
		t.Fatalf("log after cancel: %+v", l)
	}
}
