package watch

import (
	"strings"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
)

// fitScreen cuts a frame to a terminal of cols × rows: each line to cols
// display columns (colour sequences take none and are kept, so a cut line
// still resets its colour), and the frame to rows-1 lines. A line longer
// than the terminal would wrap, the frame would outgrow the screen and
// scroll its top away: the redraw would be garbled.
func fitScreen(frame string, cols, rows int) string {
	if cols <= 0 || rows <= 0 {
		return frame
	}
	lines := strings.Split(strings.TrimSuffix(frame, "\n"), "\n")
	if len(lines) > rows-1 {
		lines = lines[:max(rows-1, 1)]
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(cutLine(l, cols))
	}
	return b.String()
}

// cutLine keeps the first cols display columns of a line, skipping ANSI
// CSI sequences (ESC [ … final byte) in the count. The text is memtrace's
// own output: untrusted names were escaped before, so every ESC here is
// one of ours.
func cutLine(l string, cols int) string {
	width := 0
	cut := false
	var b strings.Builder
	for i := 0; i < len(l); {
		if l[i] == 0x1b && i+1 < len(l) && l[i+1] == '[' {
			j := i + 2
			for j < len(l) && (l[j] < 0x40 || l[j] > 0x7e) {
				j++
			}
			if j < len(l) {
				j++
			}
			b.WriteString(l[i:j])
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(l[i:])
		w := runewidth.RuneWidth(r)
		if !cut && width+w > cols {
			cut = true
		}
		if !cut {
			b.WriteString(l[i : i+size])
			width += w
		}
		i += size
	}
	return b.String()
}
