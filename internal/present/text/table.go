package text

import (
	"bufio"
	"io"
	"strings"

	"github.com/mattn/go-runewidth"
)

// A Table is one of memtrace's terminal tables: borderless, one header
// line, left aligned, in the style of ps and top. Every cell is written as
// one space, the text padded to its column's display width, one space.
// Cells are written as they are (not trimmed, headers keep their case), so
// callers escape untrusted text (Escape) before appending; colour (SGR)
// sequences take no width. A cell holding
// line breaks takes as many lines, and a tab is written as four spaces.
//
// It replaces a table library whose package initialisation alone
// allocated 660 KB in every memtrace command, watch's start included.
type Table struct {
	w    io.Writer
	rows [][][]string // rows[i][col] = the cell's lines; rows[0] is the header
}

// width measures display columns the same way in every locale: East Asian
// ambiguous characters count as one, as a terminal in a UTF-8 locale
// outside East Asia shows them.
var width = runewidth.Condition{EastAsianWidth: false}

// cellWidth is a cell's display width. The renderers colour some cells
// with SGR sequences (ESC [ … m), which take no column; any other escape
// sequence was escaped into visible text before the cell got here.
func cellWidth(s string) int {
	n := 0
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			return n + width.StringWidth(s)
		}
		n += width.StringWidth(s[:i])
		s = s[i+2:]
		// Parameters and intermediates run to the final byte, 0x40–0x7e.
		j := strings.IndexFunc(s, func(r rune) bool { return r >= 0x40 && r <= 0x7e })
		if j < 0 {
			return n
		}
		s = s[j+1:]
	}
}

// NewTable returns a table writing to w with the header set.
func NewTable(w io.Writer, header ...string) *Table {
	t := &Table{w: w}
	t.Append(header)
	return t
}

// Append adds one row; a row shorter than the others is padded with empty
// cells. The error is always nil; it is there for the renderers' callers,
// which treat a table like any writer.
func (t *Table) Append(row []string) error {
	cells := make([][]string, len(row))
	for i, c := range row {
		cells[i] = strings.Split(strings.ReplaceAll(c, "\t", "    "), "\n")
	}
	t.rows = append(t.rows, cells)
	return nil
}

// Render writes the table and returns the writer's first error.
func (t *Table) Render() error {
	var widths []int
	for _, row := range t.rows {
		for i, lines := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			for _, l := range lines {
				widths[i] = max(widths[i], cellWidth(l))
			}
		}
	}
	bw := bufio.NewWriter(t.w)
	for _, row := range t.rows {
		height := 1
		for _, lines := range row {
			height = max(height, len(lines))
		}
		for line := range height {
			for i, w := range widths {
				s := ""
				if i < len(row) && line < len(row[i]) {
					s = row[i][line]
				}
				bw.WriteByte(' ')
				bw.WriteString(s)
				bw.WriteString(strings.Repeat(" ", w-cellWidth(s)+1))
			}
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}
