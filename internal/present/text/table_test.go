package text

import (
	"bytes"
	"testing"
)

// TestTable pins the layout the renderers' golden files and users' scripts
// (awk on columns) rely on; the expected strings are what the table library
// it replaced printed for the same rows.
func TestTable(t *testing.T) {
	for _, c := range []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{"wide characters, empty cells, spaces kept, tab", []string{"PID", "COMM", "A LONG HEADER", ""},
			[][]string{{"1", "swapper/0", "x", ""}, {"12345", "é漢字", "", "tail"}, {"  lead", "trail  ", "a\tb", "z"}},
			" PID     COMM       A LONG HEADER       \n 1       swapper/0  x                   \n 12345   é漢字                     tail \n   lead  trail      a    b         z    \n"},
		{"header only", []string{"A", "B"}, nil, " A  B \n"},
		{"ragged rows", []string{"A", "B"}, [][]string{{"x"}, {"x", "y", "z"}}, " A  B    \n x       \n x  y  z \n"},
		{"colour takes no width", []string{"RESULT", "X"}, [][]string{{"ENOMEM  \x1b[31mFAILED\x1b[0m", "y"}},
			" RESULT          X \n ENOMEM  \x1b[31mFAILED\x1b[0m  y \n"},
		{"a cell of two lines", []string{"A", "B"}, [][]string{{"line1\nline2", "y"}}, " A      B \n line1  y \n line2    \n"},
	} {
		var b bytes.Buffer
		tb := NewTable(&b, c.header...)
		for _, r := range c.rows {
			tb.Append(r)
		}
		if err := tb.Render(); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, b.String(), c.want)
		}
	}
}
