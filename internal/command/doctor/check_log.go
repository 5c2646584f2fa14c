package doctor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/pkg/gfp"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

// LogSummary says what log was read and how.
type LogSummary struct {
	Source  string `json:"source"`
	Live    bool   `json:"live"`
	Records uint64 `json:"records"`
	// Release is the kernel the log says it is from, "" if it does not.
	Release    string     `json:"release,omitempty"`
	First      kmsg.Stamp `json:"first"`
	Last       kmsg.Stamp `json:"last"`
	Suppressed uint64     `json:"suppressed"`
	// Since is the --since window; Undated counts failures it could not
	// apply to (a copied log with times since boot only).
	Since   time.Duration `json:"since_ns,omitempty"`
	Undated int           `json:"undated,omitempty"`
	// Total is the failures in the log; in the window are in Failures.
	Total int      `json:"total"`
	Tried []string `json:"tried,omitempty"`
}

// FailureGroup is a group of identical failures with the mode decoded.
type FailureGroup struct {
	kmsg.Group
	ModeHex string `json:"mode_hex"`
	// Decoded is the mode's flag names for the kernel that logged it.
	Decoded string `json:"mode_decoded,omitempty"`
	// Class is gfp's allocation class: atomic, nowait, kernel, user,
	// other; "" when no table could decode it.
	Class    string `json:"class,omitempty"`
	CanSleep bool   `json:"can_sleep"`
	// DecodedWith names the GFP table used ("built-in table for 2.6.32").
	DecodedWith string `json:"decoded_with,omitempty"`
	// Notes interpret the group: who the task is, what the zones held.
	Notes []string `json:"notes,omitempty"`
}

// Atomic reports a request that could not sleep: no reclaim, no
// compaction, so it fails at once when no block of its order is free.
func (g FailureGroup) Atomic() bool {
	return g.Class == gfp.ClassAtomic || g.Class == gfp.ClassNowait
}

func checkLog(in *Inputs, cfg Config, r *Report) Finding {
	f := Finding{ID: "alloc-failures", Title: "Allocation failures in the kernel log"}
	if in.Log == nil && in.LogErr == nil {
		f.Summary = "not checked"
		return f
	}
	if in.Log == nil {
		reason := in.LogErr.Error()
		f.Severity = Warn
		f.Summary = "could not read the kernel log"
		f.add("kernel log", "%s", reason)
		f.Why = "Without the log there is no history of allocation failures: the other findings show the settings, not whether they have already failed."
		f.Fix = []string{"run as root (or with CAP_SYSLOG), or pass a copy: memtrace doctor --kmsg-file /var/log/messages"}
		if errors.Is(in.LogErr, os.ErrPermission) {
			f.note("kernel.dmesg_restrict=1 keeps the kernel log to root and CAP_SYSLOG")
		}
		r.Skipped = append(r.Skipped, Skip{Check: "kernel log", Reason: reason})
		return f
	}
	log := in.Log
	sum := &LogSummary{
		Source: log.Source, Live: log.Live, Records: log.Records, Release: log.Release,
		First: log.First, Last: log.Last, Suppressed: log.Suppressed, Since: cfg.Since,
		Total: len(log.Failures), Tried: log.Tried,
	}
	r.Log = sum
	failures := log.Failures
	if cfg.Since > 0 {
		cutoff := in.Time.Add(-cfg.Since)
		var kept []kmsg.Failure
		for _, x := range failures {
			switch {
			case x.Stamp.Wall.IsZero():
				sum.Undated++
				kept = append(kept, x)
			case !x.Stamp.Wall.Before(cutoff):
				kept = append(kept, x)
			}
		}
		failures = kept
	}
	tables := gfpTables{cfg: cfg, log: log, hostRelease: in.Release, logRelease: logRelease(log)}
	for _, g := range kmsg.GroupFailures(failures) {
		r.Failures = append(r.Failures, decodeGroup(g, &tables))
	}

	f.add("source", "%s", logSource(log))
	if len(log.Tried) > 0 {
		f.add("not readable", "%s", strings.Join(log.Tried, "; "))
	}
	if cfg.Since > 0 {
		f.add("window", "last %s (%d of %d failures in the log)", duration(cfg.Since), len(failures), len(log.Failures))
	}
	if sum.Undated > 0 {
		f.note("%d failures carry only a time since boot, so --since could not place them; they are counted", sum.Undated)
	}
	if log.Suppressed > 0 {
		f.add("suppressed", "%d more warnings were dropped by the kernel's rate limit (one report per 10 s): the counts below are a lower bound", log.Suppressed)
	}
	for _, n := range tables.notes {
		f.note("%s", n)
	}
	if len(r.Failures) == 0 {
		f.Summary = "none logged"
		if cfg.Since > 0 {
			f.Summary = "none logged in the last " + duration(cfg.Since)
		} else if log.Live {
			f.Summary = "none logged since boot (as far back as the log buffer goes)"
		}
		f.Why = "The kernel warns for every allocation it fails without __GFP_NOWARN; no warning means no such failure while these records were kept."
		return f
	}

	t := Table{Header: []string{"count", "first", "last", "task", "order", "mode", "class", "call path"}}
	atomic, sleeping := 0, 0
	for i, g := range r.Failures {
		if g.Atomic() {
			atomic += g.Count
		} else {
			sleeping += g.Count
		}
		if i >= maxGroupRows {
			continue
		}
		mode := g.ModeHex
		if g.Decoded != "" {
			mode += " " + g.Decoded
		}
		order := strconv.Itoa(g.Order)
		switch {
		case g.Kind == kmsg.KindVmalloc && g.Order < 0:
			order = "vmalloc"
		case g.Kind == kmsg.KindVmalloc:
			order = "vmalloc, " + order
		case g.Kind == kmsg.KindStall:
			order += ", stall"
		}
		t.Rows = append(t.Rows, []string{
			strconv.Itoa(g.Count), g.First.String(), g.Last.String(), g.Comm, order, mode,
			orDash(g.Class), g.Path.String(),
		})
	}
	if len(r.Failures) > maxGroupRows {
		t.Title = fmt.Sprintf("the %d most frequent of %d groups (--json lists all)", maxGroupRows, len(r.Failures))
	}
	f.Tables = append(f.Tables, t)
	f.Notes = append(f.Notes, groupNotes(r.Failures)...)
	total := atomic + sleeping
	f.Summary = fmt.Sprintf("%d failure%s in %d group%s", total, plural(uint64(total)), len(r.Failures), plural(uint64(len(r.Failures))))
	if atomic > 0 {
		f.Severity = Problem
		f.Summary += fmt.Sprintf(", %d of them atomic (could not sleep)", atomic)
		f.Why = "An atomic request cannot reclaim or compact: it fails at once when no free block of its order is left above the reserve, and in network receive that drops packets; bursts of them are how the seed's host hung."
		f.Fix = []string{"raise vm.min_free_kbytes as the \"Watermarks and reserves\" finding suggests"}
	} else {
		f.Severity = Warn
		f.Why = "These requests could sleep, so the kernel reclaimed and compacted before giving up: a memory cgroup limit, a cpuset, or a large high-order or vmalloc request that fragmentation left no room for."
		f.Fix = []string{"check the memory cgroup limits of the tasks named (memory.max / memory.limit_in_bytes) and the size of their requests"}
	}
	return f
}

// maxGroupRows bounds the failure table of the text report.
const maxGroupRows = 12

// groupNotes merges the groups' notes: many groups (one per task of a
// test, say) often have the same explanation.
func groupNotes(groups []FailureGroup) []string {
	var order []string
	who := map[string][]string{}
	for _, g := range groups {
		for _, n := range g.Notes {
			if _, ok := who[n]; !ok {
				order = append(order, n)
			}
			who[n] = append(who[n], g.Comm)
		}
	}
	out := make([]string, 0, len(order))
	for _, n := range order {
		names := who[n]
		list := strings.Join(names[:min(len(names), 3)], ", ")
		if len(names) > 3 {
			list += fmt.Sprintf(" and %d more", len(names)-3)
		}
		out = append(out, list+": "+n)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func logSource(l *kmsg.Log) string {
	s := l.Source
	if !l.Live {
		s += " (a copy: its dates are its own)"
	}
	s += fmt.Sprintf(", %d records", l.Records)
	if l.First.Known() {
		s += ", " + l.First.String() + " to " + l.Last.String()
	}
	if l.Release != "" {
		s += ", kernel " + l.Release
	}
	return s
}

// gfpTables picks and caches the GFP table for each kernel release a log
// names.
type gfpTables struct {
	cfg         Config
	log         *kmsg.Log
	hostRelease string
	logRelease  string
	cache       map[string]*gfp.Table
	notes       []string
	noted       map[string]bool
}

func (t *gfpTables) noteOnce(s string) {
	if t.noted == nil {
		t.noted = map[string]bool{}
	}
	if !t.noted[s] {
		t.noted[s] = true
		t.notes = append(t.notes, s)
	}
}

// forRelease returns the table for a failure logged by release ("" if
// unknown): --kernel wins; the running kernel's own tables (tracefs, BTF)
// serve the live log and copies from the same release; other releases
// get the built-in layout.
func (t *gfpTables) forRelease(release string) (*gfp.Table, error) {
	key := release
	switch {
	case t.cfg.Kernel != "":
		key = "kernel=" + t.cfg.Kernel
	case t.log.Live || release == "" || release == t.hostRelease:
		key = "host"
		if release == "" && !t.log.Live {
			t.noteOnce("the log does not name its kernel, so modes are decoded for this host's kernel " + t.hostRelease + "; pass --kernel RELEASE for a log from another kernel")
		}
	}
	if tb, ok := t.cache[key]; ok {
		return tb, nil
	}
	var tb *gfp.Table
	var err error
	switch {
	case t.cfg.Kernel != "":
		tb, err = gfp.ForRelease(t.cfg.Kernel)
	case key == "host":
		tb, err = t.cfg.HostGFP(t.hostRelease)
	default:
		tb, err = gfp.ForRelease(release)
	}
	if err != nil {
		t.noteOnce("decoding modes: " + err.Error())
		return nil, err
	}
	if t.cache == nil {
		t.cache = map[string]*gfp.Table{}
	}
	t.cache[key] = tb
	return tb, nil
}

// logRelease is the kernel a log is from: its "Linux version" line, or
// else the one release its failure reports name, if they agree.
func logRelease(l *kmsg.Log) string {
	if l.Release != "" {
		return l.Release
	}
	rel := ""
	for _, f := range l.Failures {
		switch {
		case f.Release == "" || f.Release == rel:
		case rel == "":
			rel = f.Release
		default:
			return "" // two kernels, no way to tell which the rest are from
		}
	}
	return rel
}

func decodeGroup(g kmsg.Group, tables *gfpTables) FailureGroup {
	fg := FailureGroup{Group: g, ModeHex: "?"}
	if g.ModeKnown {
		fg.ModeHex = "0x" + strconv.FormatUint(g.Mode, 16)
	}
	release := g.Example.Release
	if release == "" {
		release = tables.logRelease
	}
	if tb, err := tables.forRelease(release); err == nil && g.ModeKnown {
		fg.Decoded = tb.String(g.Mode)
		fg.Class = tb.Class(g.Mode)
		fg.CanSleep = !tb.Atomic(g.Mode)
		fg.DecodedWith = tb.Source()
		if g.ModeText != "" && g.ModeText != fg.Decoded {
			fg.Notes = append(fg.Notes, fmt.Sprintf("the kernel printed %s; %s decodes it as %s (the kernel's own names are right for its build)", g.ModeText, tb.Source(), fg.Decoded))
		}
	} else if g.ModeText != "" {
		fg.Decoded = g.ModeText
	}
	fg.Notes = append(fg.Notes, interpret(fg)...)
	return fg
}

// interpret explains a group: who the named task really is, and whether
// the zones at the time were short of memory or of contiguous blocks.
func interpret(g FailureGroup) []string {
	var notes []string
	ctx := g.Path.Context
	irq := ctx == "softirq" || ctx == "hardirq" || ctx == "nmi"
	switch {
	case irq && strings.HasPrefix(g.Comm, "swapper"):
		notes = append(notes, "the interrupt hit an idle CPU (swapper is the idle task): the allocation was the kernel's own "+g.Path.Activity+" work, not a process's")
	case irq:
		notes = append(notes, g.Comm+" only happened to be running when the interrupt came: the allocation was the kernel's "+orWord(g.Path.Activity, "interrupt")+" work, not the process's")
	}
	ex := g.Example
	if len(ex.Zones) == 0 {
		return notes
	}
	order := ex.Order
	var short, frag []string
	for _, z := range ex.Zones {
		if z.Zone == "DMA" || !z.HasWatermarks && !z.HasBlocks {
			continue
		}
		name := fmt.Sprintf("node %d %s", z.Node, z.Zone)
		if z.BelowMin() {
			short = append(short, fmt.Sprintf("%s free %s <= min %s", name, kb(z.FreeKB), kb(z.MinKB)))
			continue
		}
		if n, ok := z.BlocksAtLeast(order); ok && order >= 1 && n == 0 {
			frag = append(frag, fmt.Sprintf("%s free %s but no block of order >= %d", name, kb(z.FreeKB), order))
		}
	}
	if len(short) > 0 {
		notes = append(notes, "when it failed the reserve was used up: "+strings.Join(short, ", "))
	}
	if len(frag) > 0 {
		notes = append(notes, "when it failed memory was free but fragmented: "+strings.Join(frag, ", "))
	}
	if len(short) == 0 && len(frag) == 0 && (ex.Cpuset != "" && ex.Cpuset != "/" || g.CanSleep) {
		where := "its memory cgroup"
		if ex.Cpuset != "" && ex.Cpuset != "/" {
			where += " or cpuset " + ex.Cpuset
		}
		notes = append(notes, "when it failed the zones had free blocks of its order above min: the limit was "+where)
	}
	return notes
}

func orWord(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
