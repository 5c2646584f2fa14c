package watch

import (
	"strings"
	"testing"

	"github.com/mattn/go-runewidth"
)

func TestFitScreen(t *testing.T) {
	frame := "title\n" + strings.Repeat("x", 50) + "\n\x1b[31mred " + strings.Repeat("y", 40) + "\x1b[39m\nALLOC→FALLBACK ≥ 1\nlast\n"
	got := fitScreen(frame, 10, 5)
	lines := strings.Split(got, "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want rows-1 = 4: %q", len(lines), got)
	}
	for _, l := range lines {
		plain := stripANSI(l)
		if w := runewidth.StringWidth(plain); w > 10 {
			t.Errorf("line %q is %d columns wide", plain, w)
		}
	}
	if !strings.HasSuffix(lines[2], "\x1b[39m") {
		t.Errorf("cut coloured line lost its reset: %q", lines[2])
	}
	if lines[3] != "ALLOC→FALL" {
		t.Errorf("multi-byte line cut to %q", lines[3])
	}
}

func TestFitScreenUnknownSize(t *testing.T) {
	if got := fitScreen("a\nb\n", 0, 0); got != "a\nb\n" {
		t.Errorf("%q", got)
	}
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
