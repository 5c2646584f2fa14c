package tty

import "testing"

func TestEscape(t *testing.T) {
	cases := map[string]string{
		"postgres":                    "postgres",
		"\x1b[2J\x1b[31mevil":         `\x1b[2J\x1b[31mevil`,
		"tab\there":                   `tab\x09here`,
		"back\\slash":                 `back\\slash`,
		"del\x7f":                     `del\x7f`,
		"c1\u009b31m":                 `c1\x9b31m`,
		"bad\xffutf8":                 `bad\xffutf8`,
		"ünïcode ok":                  "ünïcode ok",
		"kworker/u8:2-events_unbound": "kworker/u8:2-events_unbound",
	}
	for in, want := range cases {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b]0;title\x07")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("Escape(%q) kept control byte %#x", s, c)
			}
		}
	})
}
