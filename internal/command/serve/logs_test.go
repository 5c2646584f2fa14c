package serve

import (
	"bytes"
	"log"
	"log/slog"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/present/text"
)

// TestErrorLogEscapesMessages logs as the HTTP server does (through
// slog's default handler, which writes messages as they are) a message
// carrying an escape sequence and a bidirectional override.
func TestErrorLogEscapesMessages(t *testing.T) {
	var buf bytes.Buffer
	out, flags := log.Writer(), log.Flags()
	log.SetOutput(&buf)
	log.SetFlags(0)
	defer func() { log.SetOutput(out); log.SetFlags(flags) }()

	l := slog.NewLogLogger(escapeMessages{slog.Default().Handler()}, slog.LevelWarn)
	l.Printf("http: panic serving 127.0.0.1:1: %s", "\x1b]0;pwned\x07 gnp\u202eexe")
	slog.New(escapeMessages{slog.Default().Handler()}).With("k", "v").Warn("with attrs \u2066")

	got := buf.String()
	for _, want := range []string{`\x1b]0;pwned\x07 gnp\u202eexe`, `with attrs \u2066 k=v`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	for _, r := range strings.TrimSuffix(got, "\n") {
		if r != '\n' && text.Unsafe(r) {
			t.Errorf("log holds %U:\n%q", r, got)
		}
	}
}
