// Package tty holds what memtrace needs from a terminal: escaping untrusted
// text, detecting a terminal, its size, and reading single keys.
package tty

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape makes untrusted text (process names, cgroup paths) safe to print
// on a terminal: a process can name itself with escape sequences that would
// otherwise move the cursor, recolour or retitle the operator's terminal.
// Control characters (C0, DEL, C1) and invalid UTF-8 become \xNN; a
// backslash becomes \\ so the escaping is unambiguous.
func Escape(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			writeHex(&b, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			if r < 0x100 {
				writeHex(&b, byte(r))
			} else {
				b.WriteString(strconv.QuoteRuneToASCII(r))
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

func writeHex(b *strings.Builder, c byte) {
	const digits = "0123456789abcdef"
	b.WriteString(`\x`)
	b.WriteByte(digits[c>>4])
	b.WriteByte(digits[c&0xf])
}
