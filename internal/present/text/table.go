package text

import (
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Table returns one of memtrace's terminal tables with the header set:
// borderless, one header line, left aligned, in the style of ps and top.
// Headers keep their case (tablewriter would upper-case and reformat
// them), cells are not trimmed, and with maxWidth > 0 cells are truncated
// to fit a terminal that wide. Callers escape untrusted cell text (Escape)
// before appending: the table writes cells as they are.
func Table(w io.Writer, maxWidth int, header ...string) *tablewriter.Table {
	opts := []tablewriter.Option{
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleASCII),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithTrimSpace(tw.Off),
	}
	if maxWidth > 0 {
		opts = append(opts, tablewriter.WithRowAutoWrap(tw.WrapTruncate), tablewriter.WithMaxWidth(maxWidth))
	}
	t := tablewriter.NewTable(w, opts...)
	h := make([]any, len(header))
	for i, s := range header {
		h[i] = s
	}
	t.Header(h...)
	return t
}
