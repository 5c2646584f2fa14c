package watch

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
)

// View controls how a frame is drawn.
type View struct {
	// Width is the terminal's width; tables are drawn whole and the
	// caller cuts lines to it (fitScreen), so the first columns stay
	// readable on a narrow terminal, as in top. 0: not a terminal.
	Width   int
	MaxRows int  // rows per table (0: all)
	Color   bool // ANSI colour (terminal only, never with NO_COLOR)
	Stacks  int  // failing stacks to show (0: none)
	Title   string
	Hooks   []event.HookStatus
	// Context is the loader's ContextSource; shown when it is unavailable.
	Context string
	// DecodeErrors counts records memtrace could not decode.
	DecodeErrors uint64
	// Final draws the all-time summary printed on exit.
	Final bool
}

const (
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	reset  = "\x1b[0m"
)

func (v View) paint(color, s string) string {
	if !v.Color || s == "" {
		return s
	}
	return color + s + reset
}

// Render draws one frame: the tables of the families, the system and
// the health of the probes (and stacks when asked).
func Render(w io.Writer, m *Model, v View) {
	fmt.Fprintln(w, v.paint(bold, v.Title))
	fmt.Fprintln(w)
	v.allocTable(w, m)
	v.thpLine(w, m)
	v.burstLines(w, m)
	v.fragTable(w, m)
	v.hugeTable(w, m)
	v.countedTables(w, m)
	v.longStalls(w, m)
	v.system(w, m)
	v.health(w, m)
	if v.Stacks > 0 {
		v.stacks(w, m)
		v.longStallStacks(w, m)
	}
}

func (v View) heading(w io.Writer, s string) {
	fmt.Fprintln(w, v.paint(bold, s))
}

func (v View) table(w io.Writer, header []string, rows [][]string) {
	t := text.NewTable(w, header...)
	for _, r := range rows {
		_ = t.Append(r)
	}
	_ = t.Render()
}

func (v View) limit(n int) int {
	if v.MaxRows > 0 && n > v.MaxRows && !v.Final {
		return v.MaxRows
	}
	return n
}

// section draws one titled table: "none" when empty, at most the row
// limit (with a "… N more" line), and a blank line after.
func section[R any](v View, w io.Writer, title string, header []string, rows []R, cells func(R) []string) {
	if len(rows) == 0 {
		// One line on a terminal, whose rows the other sections need.
		if v.Width > 0 {
			v.heading(w, title+"  none")
		} else {
			v.heading(w, title)
			fmt.Fprintln(w, "  none")
		}
		fmt.Fprintln(w)
		return
	}
	v.heading(w, title)
	n := v.limit(len(rows))
	table := make([][]string, 0, n)
	for _, r := range rows[:n] {
		table = append(table, cells(r))
	}
	v.table(w, header, table)
	if len(rows) > n {
		fmt.Fprintf(w, "  … %d more\n", len(rows)-n)
	}
	fmt.Fprintln(w)
}

func (v View) allocTable(w io.Writer, m *Model) {
	section(v, w, fmt.Sprintf("Allocation failures by process  (total %d)", m.TotalFailures),
		[]string{"PID", "COMM", "LAST", "TOTAL", "ORDERS", "CONTEXT", "NO-SLEEP", "GFP", "CONTAINER/CGROUP"},
		m.AllocRows(), func(p *AllocProc) []string {
			gfp := ""
			if len(p.GFP) > 0 {
				gfp = p.GFP[0]
				if len(p.GFP) > 1 {
					gfp += fmt.Sprintf(" (+%d)", len(p.GFP)-1)
				}
			}
			atomic := "-"
			if p.Atomic > 0 {
				atomic = v.paint(red, "ATOMIC "+strconv.FormatUint(p.Atomic, 10))
			}
			return []string{
				strconv.FormatUint(uint64(p.Pid), 10), text.Escape(p.Comm),
				strconv.FormatUint(p.Recent, 10), strconv.FormatUint(p.Total, 10),
				joinOrders(p.Orders), contexts(p.Contexts), atomic, gfp, text.Escape(p.Cgroup),
			}
		})
}

func (v View) fragTable(w io.Writer, m *Model) {
	section(v, w, fmt.Sprintf("Fragmentation (extfrag) by process  (total %d)", m.TotalExtfrag),
		[]string{"PID", "COMM", "LAST", "TOTAL", "FRAGMENTING", "FALLBACK ORDERS", "ALLOC→FALLBACK", "CONTAINER/CGROUP"},
		m.FragRows(), func(p *FragProc) []string {
			pairs := make([]string, 0, len(p.Pairs))
			for _, k := range rankKeys(p.Pairs) {
				pairs = append(pairs, fmt.Sprintf("%s %d", k, p.Pairs[k]))
			}
			return []string{
				strconv.FormatUint(uint64(p.Pid), 10), text.Escape(p.Comm),
				strconv.FormatUint(p.Recent, 10), strconv.FormatUint(p.Total, 10),
				strconv.FormatUint(p.Fragmenting, 10), joinOrders(p.Orders), strings.Join(pairs, ", "), text.Escape(p.Cgroup),
			}
		})
}

func (v View) hugeTable(w io.Writer, m *Model) {
	section(v, w, fmt.Sprintf("Huge-page requests  (%d requested, %d failed, %d fell back to normal pages)", m.TotalHuge, m.TotalHugeFailed, m.TotalFallbacks),
		[]string{"TIME", "PID", "COMM", "CALL", "SIZE", "RESULT", "", "FLAGS"},
		m.HugeRows(), func(r HugeRow) []string {
			mark := r.Mark
			switch r.Mark {
			case "FAILED":
				mark = v.paint(red, "FAILED")
			case "FALLBACK":
				mark = v.paint(yellow, "FALLBACK: 4 KiB pages")
			}
			return []string{
				r.Time.Local().Format("15:04:05.000"), strconv.FormatUint(uint64(r.Pid), 10), text.Escape(r.Comm),
				string(r.Call), text.Bytes(r.Size, text.Fixed), r.Result, mark, r.Flags,
			}
		})
}

func (v View) system(w io.Writer, m *Model) {
	s := m.System
	v.heading(w, "System")
	mem := s.Memory
	fmt.Fprintf(w, "  memory   free %s  available %s  page tables %s\n",
		text.Bytes(mem.MemFreeKB*1024, text.Fixed), text.Bytes(mem.MemAvailableKB*1024, text.Fixed), text.Bytes(mem.PageTablesKB*1024, text.Fixed))
	fmt.Fprintf(w, "  vm       min_free_kbytes %d  zone_reclaim_mode %d  watermark_scale_factor %d\n",
		s.Sysctl.MinFreeKbytes, s.Sysctl.ZoneReclaimMode, s.Sysctl.WatermarkScaleFactor)
	v.demandLine(w, m)
	for _, p := range s.HugePools {
		if p.Total == 0 && p.PageSizeKB != mem.HugepageSizeKB {
			continue
		}
		line := fmt.Sprintf("  huge %-6s total %d  free %d  rsvd %d  surp %d   in use or promised %d  never used %d (%s)",
			text.Bytes(p.PageSizeKB*1024, text.Fixed), p.Total, p.Free, p.Reserved, p.Surplus, p.InUseOrPromised(), p.NeverUsed(), text.Bytes(p.NeverUsedBytes(), text.Fixed))
		if p.NeverUsed() > 0 {
			line = v.paint(yellow, line)
		}
		fmt.Fprintln(w, line)
	}
	for _, z := range s.Buddy {
		if len(z.FreeBlocks) == 0 {
			continue
		}
		parts := make([]string, len(z.FreeBlocks))
		for i, n := range z.FreeBlocks {
			parts[i] = strconv.FormatUint(n, 10)
		}
		line := fmt.Sprintf("  buddy    node %d %-7s free blocks by order 0..%d: %s", z.Node, z.Zone, len(z.FreeBlocks)-1, strings.Join(parts, " "))
		if z.FreePages > 0 && z.MaxFreeOrder() < 1 {
			line += v.paint(red, "   NO FREE BLOCK OF ORDER ≥ 1")
		}
		if z.MinPages > 0 && z.FreePages < z.MinPages {
			line += v.paint(red, "   BELOW MIN WATERMARK")
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  pressure %s\n", v.rates(m))
	for _, e := range s.Errors {
		fmt.Fprintf(w, "  %s\n", v.paint(yellow, "could not read: "+e))
	}
	fmt.Fprintln(w)
}

// pressureCounters are the vmstat counters whose rates show the allocator
// struggling: direct reclaim stalls and compaction.
var pressureCounters = []struct{ label, prefix string }{
	{"allocstall", "allocstall_"},
	{"compact_stall", "compact_stall"},
	{"compact_fail", "compact_fail"},
	{"compact_success", "compact_success"},
	{"pgscan_direct", "pgscan_direct"},
	{"pgscan_kswapd", "pgscan_kswapd"},
}

func sumPrefix(vm map[string]uint64, prefix string) uint64 {
	var n uint64
	for k, v := range vm {
		if k == prefix || (strings.HasSuffix(prefix, "_") && strings.HasPrefix(k, prefix)) {
			n += v
		}
	}
	return n
}

func (v View) rates(m *Model) string {
	secs := m.Interval.Seconds()
	prev := m.prevSystem.Vmstat
	var parts []string
	for _, c := range pressureCounters {
		now := sumPrefix(m.System.Vmstat, c.prefix)
		if v.Final {
			base := now
			if first := m.firstVmstat(c.prefix); first <= now {
				base = now - first
			}
			parts = append(parts, fmt.Sprintf("%s %d", c.label, base))
			continue
		}
		rate := 0.0
		if prev != nil && secs > 0 {
			rate = float64(delta(now, sumPrefix(prev, c.prefix))) / secs
		}
		s := fmt.Sprintf("%s %.0f/s", c.label, rate)
		if rate > 0 && (c.label == "allocstall" || c.label == "compact_fail") {
			s = v.paint(red, s)
		}
		parts = append(parts, s)
	}
	if v.Final {
		return "since start: " + strings.Join(parts, "  ")
	}
	return strings.Join(parts, "  ")
}

func (v View) health(w io.Writer, m *Model) {
	v.heading(w, "Health")
	var hooks []string
	for _, h := range v.Hooks {
		if h.Attached {
			hooks = append(hooks, fmt.Sprintf("%s: %s", h.Signal, h.Hook))
		} else {
			hooks = append(hooks, v.paint(red, fmt.Sprintf("%s: NOT ATTACHED", h.Signal)))
		}
	}
	fmt.Fprintf(w, "  hooks    %s\n", strings.Join(hooks, "  ·  "))
	if strings.HasPrefix(v.Context, "unavailable") {
		fmt.Fprintf(w, "  context  %s\n", v.paint(yellow, "process/softirq/hardirq "+v.Context))
	}
	var lost, sampled, full uint64
	sigs := make([]string, 0, len(m.Stats))
	for sig := range m.Stats {
		sigs = append(sigs, string(sig))
	}
	sort.Strings(sigs)
	var perSig []string
	for _, sig := range sigs {
		st := m.Stats[event.Signal(sig)]
		lost += st.Lost
		sampled += st.Sampled
		full += st.MapFull
		if st.Lost > 0 {
			perSig = append(perSig, fmt.Sprintf("%s lost %d", sig, st.Lost))
		}
	}
	lostStr := fmt.Sprintf("lost %d", lost)
	if lost > 0 {
		lostStr = v.paint(red, lostStr+" ("+strings.Join(perSig, ", ")+")")
	}
	fullStr := fmt.Sprintf("map full %d", full)
	if full > 0 {
		fullStr = v.paint(red, fullStr)
	}
	fmt.Fprintf(w, "  events   %.0f/s  %s  sampled %d (counted, not streamed)  %s  decode errors %d\n",
		m.EventsPerSec, lostStr, sampled, fullStr, v.DecodeErrors)
	fmt.Fprintln(w)
}

func (v View) stacks(w io.Writer, m *Model) {
	top := m.TopStacks(v.Stacks)
	v.heading(w, "Most frequent failing kernel stacks")
	if len(top) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	for i, s := range top {
		comms := rankKeys(s.Comms)
		for j := range comms {
			comms[j] = text.Escape(comms[j])
		}
		fmt.Fprintf(w, "  #%d  %d failures  (%s)\n", i+1, s.Count, strings.Join(comms, ", "))
		if len(s.Frames) == 0 {
			fmt.Fprintln(w, "      (stack not available)")
		}
		for _, f := range s.Frames {
			fmt.Fprintf(w, "      %s\n", f)
		}
	}
	fmt.Fprintln(w)
}

// Since formats the time since start for the title.
func Since(start, now time.Time) string {
	return now.Sub(start).Truncate(time.Second).String()
}
