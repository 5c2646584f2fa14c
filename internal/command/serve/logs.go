package serve

import (
	"context"
	"log/slog"

	"github.com/memtrace/memtrace/internal/present/text"
)

// escapeMessages escapes the message of every log record with text.Escape.
// slog quotes attribute values that need it, but writes messages as they
// are, and the HTTP server's error log puts what a client sent (a panic
// value, a peer's handshake) in the message; serve's log ends up on the
// operator's terminal or in the journal.
type escapeMessages struct{ slog.Handler }

func (h escapeMessages) Handle(ctx context.Context, r slog.Record) error {
	r.Message = text.Escape(r.Message)
	return h.Handler.Handle(ctx, r)
}

func (h escapeMessages) WithAttrs(as []slog.Attr) slog.Handler {
	return escapeMessages{h.Handler.WithAttrs(as)}
}

func (h escapeMessages) WithGroup(name string) slog.Handler {
	return escapeMessages{h.Handler.WithGroup(name)}
}
