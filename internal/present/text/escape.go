package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape makes untrusted text safe to show on a terminal or a dashboard.
// A process can name itself with an escape sequence that would move the
// cursor, recolour or retitle the operator's terminal (C0, DEL, and the C1
// controls such as U+009B, a one-character CSI), or with a bidirectional
// override that makes "gnp.exe" read as "exe.png". Escape writes:
//
//   - a byte that is not valid UTF-8, and the ASCII controls (C0, DEL), as
//     \xNN: the byte itself;
//   - C1 controls, format characters (bidirectional overrides, isolates and
//     marks, zero-width characters, the byte-order mark) and the line and
//     paragraph separators as \uNNNN (or \UNNNNNNNN): the code point;
//   - a backslash as \\, so that a process literally named `\x1b` cannot
//     pass for an escaped ESC.
//
// Everything else is written as it is, so ordinary names (ünïcode
// included) read the same. The result is valid UTF-8, holds no rune that
// Unsafe reports, and the escaping can be undone without ambiguity.
//
// Machine-readable outputs (JSON) do not use Escape: they carry the
// kernel's bytes and leave display to their reader.
func Escape(s string) string {
	if plainASCII(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			writeByte(&b, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < utf8.RuneSelf && Unsafe(r):
			writeByte(&b, byte(r))
		case Unsafe(r):
			writeRune(&b, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Unsafe reports whether r must not reach a terminal as it is: a control
// character (C0, DEL, C1), a format character (Cf: the bidirectional
// controls U+061C, U+200E/U+200F, U+202A–U+202E and U+2066–U+2069,
// zero-width characters, the byte-order mark, tags) or a line or paragraph
// separator, which some terminals and browsers break lines at.
func Unsafe(r rune) bool {
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7f
	}
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// plainASCII reports whether s is printable ASCII without a backslash: the
// common case, returned without copying.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

func writeByte(b *strings.Builder, c byte) {
	b.WriteString(`\x`)
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&0xf])
}

func writeRune(b *strings.Builder, r rune) {
	digits := 4
	if r > 0xffff {
		b.WriteString(`\U`)
		digits = 8
	} else {
		b.WriteString(`\u`)
	}
	for shift := (digits - 1) * 4; shift >= 0; shift -= 4 {
		b.WriteByte(hexDigits[(r>>shift)&0xf])
	}
}
