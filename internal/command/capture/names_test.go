package capture

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
)

// TestJSONKeepsNames pins what docs/capture-schema.md ("Names") promises:
// the document carries process names as the kernel gave them (valid JSON,
// not escaped for display), and reads them back unchanged; only a byte
// that is not UTF-8 becomes U+FFFD.
func TestJSONKeepsNames(t *testing.T) {
	for _, c := range []struct{ comm, back string }{
		{"gnp\u202eexe", "gnp\u202eexe"},
		{"csi\u009b2J", "csi\u009b2J"},
		{"\x1b]0;pwned\x07", "\x1b]0;pwned\x07"},
		{`\x1b`, `\x1b`},
		{"\u2067iso\u2069", "\u2067iso\u2069"},
		{"bad\xffname", "bad\ufffdname"},
	} {
		doc := &Document{Schema: Schema, SchemaVersion: SchemaVersion,
			Events: []event.Event{{Kind: event.KindHugetlb, Task: event.Task{Pid: 1, Comm: c.comm}}}}
		var buf bytes.Buffer
		if err := Write("-", &buf, doc); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(buf.Bytes()) {
			t.Fatalf("comm %q: not valid JSON", c.comm)
		}
		got, err := Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.Events[0].Comm != c.back {
			t.Errorf("comm %q reads back as %q, want %q", c.comm, got.Events[0].Comm, c.back)
		}
	}
}
