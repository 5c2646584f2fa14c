package doctor

import (
	"fmt"
	"strings"

	"github.com/memtrace/memtrace/pkg/tty"
)

// Escape makes untrusted text (task names, log lines, file contents) safe
// to print on a terminal. tty.Escape, shared by every memtrace command,
// turns control characters and invalid UTF-8 into \xNN; on top of it the
// bidirectional overrides and the byte-order mark, which can reorder or
// hide what a reader sees in a line, become \u{NNNN}.
func Escape(s string) string {
	e := tty.Escape(s)
	if !strings.ContainsFunc(e, hidden) {
		return e
	}
	var b strings.Builder
	for _, r := range e {
		if hidden(r) {
			fmt.Fprintf(&b, `\u{%04x}`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hidden(r rune) bool { return isBidi(r) || r == 0xfeff }

func isBidi(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f || r == 0x061c
}
