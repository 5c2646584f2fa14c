package watch

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-runewidth"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
)

// thpLine counts the THP fallbacks apart from the failure table: only
// when there were some.
func (v View) thpLine(w io.Writer, m *Model) {
	rows, total := m.THPRows()
	if total == 0 {
		return
	}
	parts := make([]string, 0, 5)
	for i, p := range rows {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("+%d more", len(rows)-5))
			break
		}
		parts = append(parts, fmt.Sprintf("%s[%d] %d", text.Escape(p.Comm), p.Pid, p.Total))
	}
	fmt.Fprintf(w, "%s %d  (expected: huge-page faults that fell back to small pages; not in the table above)\n", v.paint(bold, "THP fallbacks"), total)
	if len(parts) > 0 {
		fmt.Fprintf(w, "  %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
}

// burstLines draws a line per failure burst with the zones as read then:
// only when a failure brought a zone state.
func (v View) burstLines(w io.Writer, m *Model) {
	bursts, total := m.Bursts()
	if total == 0 {
		return
	}
	// On a terminal, as many as a table's rows: a burst takes two to
	// four lines there, and five of them pushed the stall tables and
	// the atomic demand off a 50-line screen.
	bursts = bursts[len(bursts)-v.limit(len(bursts)):]
	title := fmt.Sprintf("Zones at failure bursts  (%d since start", total)
	if int(total) > len(bursts) {
		title += fmt.Sprintf(", last %d", len(bursts))
	}
	v.heading(w, title+")")
	for i := len(bursts) - 1; i >= 0; i-- {
		b := bursts[i]
		read := "read with an earlier burst"
		if b.ReadAfterNs >= 0 {
			read = "read " + duration(time.Duration(b.ReadAfterNs)) + " after"
		}
		failures := plural(b.Failures, "failure")
		if b.THPFallbacks > 0 {
			failures += fmt.Sprintf(", %d THP", b.THPFallbacks)
		}
		gfp := b.GFP
		if gfp == "" {
			gfp = b.GFPFlags.String()
		}
		// The judgement goes on lines of its own, wrapped to the
		// terminal: after the request and its GFP names it began past
		// column 100, so a terminal cut it away (fitScreen) and with it
		// the zone figures the line is for.
		fmt.Fprintf(w, "  %s  %s[%d] %s order %d (%s, %s)  %s\n", b.First.Local().Format("15:04:05.000"),
			text.Escape(b.Comm), b.Pid, b.Context, b.Order, failures, read, gfp)
		for _, l := range wrapSummary(text.Escape(b.Summary), v.Width-len(burstIndent)) {
			if b.Verdict != event.VerdictNeither {
				l = v.paint(red, l)
			}
			fmt.Fprintln(w, burstIndent+l)
		}
	}
	fmt.Fprintln(w)
}

// burstIndent sets a burst's judgement under its request.
const burstIndent = "      "

// wrapSummary wraps a zone judgement ("verdict: zone figures") to width
// display columns, the figures starting a line of their own when the
// whole does not fit; width < 20 (or 0, not a terminal) leaves it whole.
func wrapSummary(s string, width int) []string {
	if width < 20 || runewidth.StringWidth(s) <= width {
		return []string{s}
	}
	if verdict, levels, ok := strings.Cut(s, ": "); ok {
		return append(wrapWords(verdict+":", width), wrapWords(levels, width)...)
	}
	return wrapWords(s, width)
}

// units stay on the line of their number.
var units = map[string]bool{"B": true, "KiB": true, "MiB": true, "GiB": true, "TiB": true,
	"B,": true, "KiB,": true, "MiB,": true, "GiB,": true, "TiB,": true}

// wrapWords breaks s at spaces into lines of at most width display
// columns (a longer word keeps its own line), never between a number and
// its unit.
func wrapWords(s string, width int) []string {
	var words []string
	for _, w := range strings.Fields(s) {
		if units[w] && len(words) > 0 {
			words[len(words)-1] += " " + w
			continue
		}
		words = append(words, w)
	}
	var lines []string
	line, n := "", 0
	for _, word := range words {
		ww := runewidth.StringWidth(word)
		if n > 0 && n+1+ww > width {
			lines = append(lines, line)
			line, n = "", 0
		}
		if n > 0 {
			line += " "
			n++
		}
		line += word
		n += ww
	}
	return append(lines, line)
}

// longStalls lists the stalls over --stall-threshold.
func (v View) longStalls(w io.Writer, m *Model) {
	th := m.why.stallThreshold
	if th <= 0 {
		return
	}
	rows, total := m.LongStalls()
	section(v, w, fmt.Sprintf("Stalls of %s or more  (%d since start, newest first)", duration(th), total),
		// How long it took and what came of it before the GFP names,
		// which are wide: a terminal cuts the right of a table away.
		[]string{"TIME", "PID", "COMM", "KIND", "ORDER", "TOOK", "RESULT", "GFP", "CONTAINER/CGROUP"},
		rows, func(r StallRow) []string {
			return []string{r.Time.Local().Format("15:04:05.000"), strconv.FormatUint(uint64(r.Pid), 10), text.Escape(r.Comm),
				string(r.Kind), strconv.Itoa(int(r.Order)), v.paint(red, duration(r.Duration)), text.Escape(r.Detail), r.GFP, text.Escape(r.Cgroup)}
		})
}

// longStallStacks shows, under --stacks, where the newest stalls over the
// threshold began (--top-stacks of them). Render draws them last, after
// the System section: before it, a stack or two pushed the atomic demand
// off a 50-line terminal.
func (v View) longStallStacks(w io.Writer, m *Model) {
	if m.why.stallThreshold <= 0 {
		return
	}
	rows, _ := m.LongStalls()
	v.heading(w, "Kernel stacks of the newest long stalls")
	if len(rows) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for i, r := range rows[:min(len(rows), v.Stacks)] {
		fmt.Fprintf(w, "  #%d  %s  %s[%d] %s %s\n", i+1, r.Time.Local().Format("15:04:05.000"), text.Escape(r.Comm), r.Pid, r.Kind, duration(r.Duration))
		if len(r.Stack) == 0 {
			fmt.Fprintln(w, "      (stack not available)")
		}
		for _, f := range r.Stack {
			fmt.Fprintf(w, "      %s\n", f)
		}
	}
	fmt.Fprintln(w)
}

// demandLine is the atomic demand in the System section: the last
// interval and second, and the peaks since start, against the reserve.
func (v View) demandLine(w io.Writer, m *Model) {
	d := m.Demand()
	if d == nil {
		return
	}
	pages := func(p demand.Peak) string { return text.Bytes(p.Pages*pageSize, text.Fixed) }
	s := d.Summary
	// Two lines: on one, the GFP_ATOMIC peak and the reserve it is set
	// against began past column 80 and a terminal cut them away.
	fmt.Fprintf(w, "  atomic   now %s/%s, %s/s   peak %s/%s, %s/s\n",
		pages(d.Latest.Interval), s.Interval, pages(d.Latest.Second),
		pages(s.PerInterval.Total), s.Interval, pages(s.PerSecond.Total))
	line := fmt.Sprintf("           GFP_ATOMIC-class peak %s/%s", pages(s.PerInterval.High), s.Interval)
	// Atomic requests may use 5/8 of the min watermark that others may
	// not (3/8 of it stays even from them): a burst of them larger than
	// that part of min_free_kbytes can exhaust it.
	if reserve := uint64(max(m.System.Sysctl.MinFreeKbytes, 0)) * 1024 * 5 / 8; reserve > 0 {
		high := s.PerInterval.High.Pages * pageSize
		note := fmt.Sprintf("  reserve for them %s", text.Bytes(reserve, text.Fixed))
		if high > reserve {
			note = v.paint(red, note+": A BURST EXCEEDS IT (memtrace doctor --measure)")
		}
		line += note
	}
	fmt.Fprintln(w, line)
	if d.Err != nil {
		fmt.Fprintf(w, "  %s\n", v.paint(yellow, "atomic demand no longer read: "+d.Err.Error()))
	}
}

// pageSize is the base page size: atomic demand is counted in pages.
const pageSize = 4096
