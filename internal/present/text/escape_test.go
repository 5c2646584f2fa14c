package text

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"plain", "postgres", "postgres"},
		{"kernel thread", "kworker/u8:2-events_unbound", "kworker/u8:2-events_unbound"},
		{"unicode kept", "ünïcode → ok", "ünïcode → ok"},
		{"empty", "", ""},
		{"CSI sequence", "\x1b[2J\x1b[31mevil", `\x1b[2J\x1b[31mevil`},
		{"OSC title", "\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"tab newline CR", "a\tb\nc\rd", `a\x09b\x0ac\x0dd`},
		{"NUL", "a\x00b", `a\x00b`},
		{"DEL", "del\x7f", `del\x7f`},
		{"C1 CSI", "c1\u009b31m", `c1\u009b31m`},
		{"C1 NEL", "next\u0085line", `next\u0085line`},
		{"raw byte 0x9b is not C1", "raw\x9b", `raw\x9b`},
		{"invalid UTF-8", "bad\xffutf8", `bad\xffutf8`},
		{"truncated rune", "cut\xe2\x80", `cut\xe2\x80`},
		{"surrogate half", "sur\xed\xa0\x80", `sur\xed\xa0\x80`},
		{"backslash", `back\slash`, `back\\slash`},
		{"literal \\x1b", `\x1b`, `\\x1b`},
		{"RLO", "bidi\u202egnp.exe", `bidi\u202egnp.exe`},
		{"LRE PDF", "\u202aa\u202c", `\u202aa\u202c`},
		{"isolates", "\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
		{"marks", "\u200e\u200f\u061c", `\u200e\u200f\u061c`},
		{"zero width space", "post\u200bgres", `post\u200bgres`},
		{"BOM", "\ufeffname", `\ufeffname`},
		{"line separator", "a\u2028b\u2029c", `a\u2028b\u2029c`},
		{"tag character", "flag\U000e0041", `flag\U000e0041`},
		{"replacement char kept", "x\ufffdy", "x\ufffdy"},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("%s: Escape(%q) = %q, want %q", c.name, c.in, got, c.want)
		}
	}
}

func TestUnsafe(t *testing.T) {
	for _, r := range []rune{0, 0x1b, 0x7f, 0x80, 0x9b, 0x9f, 0x061c, 0x200e, 0x200f,
		0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0xfeff, 0x2028} {
		if !Unsafe(r) {
			t.Errorf("Unsafe(%U) = false", r)
		}
	}
	for _, r := range []rune{' ', 'a', '\\', 0xa0, 'ü', '→', 0xfffd, '日'} {
		if Unsafe(r) {
			t.Errorf("Unsafe(%U) = true", r)
		}
	}
}

// unescape undoes Escape; the fuzz test uses it to show that the escaping
// is unambiguous (two names never print the same).
func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		n := 0
		switch s[i+1] {
		case '\\':
			b.WriteByte('\\')
			i += 2
			continue
		case 'x':
			n = 2
		case 'u':
			n = 4
		case 'U':
			n = 8
		default:
			return "", false
		}
		if i+2+n > len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
		if err != nil {
			return "", false
		}
		if n == 2 {
			b.WriteByte(byte(v))
		} else {
			b.WriteRune(rune(v))
		}
		i += 2 + n
	}
	return b.String(), true
}

// FuzzEscape: whatever the input, the escaped text is valid UTF-8, holds no
// control, format (bidi) or separator rune, and reads back to the input.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"postgres", "\x1b]0;title\x07", "bidi\u202eevil", "\u009b", "bad\xff", `\x1b`, "\u2066\u200f", "\ufeff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if !utf8.ValidString(e) {
			t.Fatalf("Escape(%q) = %q: invalid UTF-8", s, e)
		}
		for _, r := range e {
			if Unsafe(r) {
				t.Fatalf("Escape(%q) = %q: holds %U", s, e, r)
			}
		}
		back, ok := unescape(e)
		if !ok || back != s {
			t.Fatalf("Escape(%q) = %q reads back as %q (ok %v)", s, e, back, ok)
		}
	})
}

func BenchmarkEscapePlain(b *testing.B) {
	for b.Loop() {
		_ = Escape("kworker/u8:2-events_unbound")
	}
}
