package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/memtrace/memtrace/internal/present/text"
)

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

var severityLabel = map[Severity]string{OK: "OK", Warn: "WARN", Problem: "PROBLEM"}

// ordered returns the findings worst first, keeping the checklist order
// within a severity.
func (r *Report) ordered() []Finding {
	fs := slices.Clone(r.Findings)
	slices.SortStableFunc(fs, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return fs
}

// WriteText writes the report for a terminal: a header, one line per
// finding, then each finding's evidence, reasons and fixes. Everything
// read from the host is escaped (task names and log lines are untrusted).
func WriteText(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	h := r.Host
	ew.printf("memtrace doctor: %s", text.Escape(orWord(h.Hostname, "this host")))
	if h.Release != "" {
		ew.printf(", Linux %s", text.Escape(h.Release))
	}
	ew.printf(", %s memory", kb(h.MemTotalKB))
	if h.NUMANodes > 1 {
		ew.printf(", %d NUMA nodes", h.NUMANodes)
	}
	if h.Uptime > 0 {
		ew.printf(", up %s", duration(h.Uptime))
	}
	ew.printf("\n\n")

	fs := r.ordered()
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	for _, f := range fs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", severityLabel[f.Severity], text.Escape(f.Title), text.Escape(f.Summary))
	}
	tw.Flush()
	ew.printf("\n  %d problem, %d warn, %d ok", r.Count(Problem), r.Count(Warn), r.Count(OK))
	if r.Elapsed > 0 {
		ew.printf(" (%.2f s)", r.Elapsed.Seconds())
	}
	ew.printf("\n")

	for _, f := range fs {
		writeFinding(ew, f)
	}
	if len(r.Skipped) > 0 {
		ew.printf("\nSkipped:\n")
		for _, s := range r.Skipped {
			ew.printf("  %s: %s\n", text.Escape(s.Check), text.Escape(s.Reason))
		}
	}
	return ew.err
}

func writeFinding(ew *errWriter, f Finding) {
	ew.printf("\n%s  %s\n", severityLabel[f.Severity], text.Escape(f.Title))
	ew.printf("   %s\n", text.Escape(f.Summary))
	if len(f.Evidence) > 0 {
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		for _, e := range f.Evidence {
			fmt.Fprintf(tw, "   %s\t%s\n", text.Escape(e.Label), text.Escape(e.Value))
		}
		tw.Flush()
	}
	for _, t := range f.Tables {
		ew.printf("\n")
		if t.Title != "" {
			ew.printf("   %s\n", text.Escape(t.Title))
		}
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "   %s\n", strings.ToUpper(strings.Join(escapeAll(t.Header), "\t")))
		for _, row := range t.Rows {
			fmt.Fprintf(tw, "   %s\n", strings.Join(escapeAll(row), "\t"))
		}
		tw.Flush()
	}
	if len(f.Notes) > 0 {
		ew.printf("\n")
		for _, n := range f.Notes {
			ew.printf("   - %s\n", text.Escape(n))
		}
	}
	if f.Why != "" {
		ew.printf("\n   Why: %s\n", text.Escape(f.Why))
	}
	if len(f.Fix) > 0 {
		ew.printf("   Change:\n")
		for _, x := range f.Fix {
			ew.printf("     %s\n", text.Escape(x))
		}
	}
}

func escapeAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = text.Escape(v)
	}
	return out
}

// errWriter keeps the first write error, so rendering code stays flat.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
