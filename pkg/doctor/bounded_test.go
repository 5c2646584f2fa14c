package doctor

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/pkg/kmsg"
	"github.com/memtrace/memtrace/pkg/kmsg/synthlog"
)

func writeLog(t *testing.T, r io.Reader) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kern.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnparsedOnlyLog: a log whose failure reports are all in a form
// that cannot be read says so, not "none logged".
func TestUnparsedOnlyLog(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "[%d.000001] swapper/0: page allocation failure: order:one, mode:0x20\n", 100+i)
	}
	_, r := run(t, "testdata/vm", writeLog(t, strings.NewReader(b.String())), Config{})
	f := find(t, r, "alloc-failures")
	if f.Severity != Warn || !strings.Contains(f.Summary, "100 lines name an allocation failure") || r.Log.Unparsed != 100 {
		t.Errorf("%v %q, unparsed %d", f.Severity, f.Summary, r.Log.Unparsed)
	}
}

// TestOtherGroupsReported: past kmsg.MaxGroups groups, the report keeps
// the most frequent and counts the others, in the text and the JSON.
func TestOtherGroupsReported(t *testing.T) {
	n := kmsg.MaxGroups + 50
	_, r := run(t, "testdata/vm", writeLog(t, synthlog.New(synthlog.Options{Reports: n, Distinct: true})), Config{})
	f := find(t, r, "alloc-failures")
	want := fmt.Sprintf("%d failures in %d groups", n, n)
	if len(r.Failures) != kmsg.MaxGroups || r.Log.Other.Reports != 50 || r.Log.Total != n || !strings.HasPrefix(f.Summary, want) {
		t.Errorf("%d groups, other %+v, total %d, summary %q", len(r.Failures), r.Log.Other, r.Log.Total, f.Summary)
	}
	if !strings.Contains(fmt.Sprint(f.Evidence), "50 failures in 50 other groups") {
		t.Errorf("evidence %+v", f.Evidence)
	}
}

// endless never ends, and never holds a failure.
type endless struct{}

func (endless) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = '\n'
	}
	return len(b), nil
}

// TestTruncatedLog: a pipe read up to its bound is "none in the first N
// read", not "none logged".
func TestTruncatedLog(t *testing.T) {
	_, r := run(t, "testdata/vm", "-", Config{}, func(o *Options) {
		o.LogFile, o.Stdin, o.LogMaxBytes = "-", endless{}, 1<<20
	})
	f := find(t, r, "alloc-failures")
	if f.Severity != Warn || f.Summary != "none in the first 1 MiB read" || !r.Log.Truncated || r.Log.MaxBytes != 1<<20 {
		t.Errorf("%v %q, log %+v", f.Severity, f.Summary, r.Log)
	}
}
