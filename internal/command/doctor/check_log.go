package doctor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/present/text"
	"github.com/memtrace/memtrace/pkg/gfp"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

// LogSummary says what log was read and how.
type LogSummary struct {
	Source  string `json:"source"`
	Live    bool   `json:"live"`
	Records uint64 `json:"records"`
	// Bytes is how much of a copy was read; Truncated says reading
	// stopped with more to come, at MaxBytes (--kmsg-max, for what is
	// not a regular file) or at the size a regular file had when opened;
	// Interrupted that Ctrl-C stopped it.
	Bytes       int64 `json:"bytes,omitempty"`
	MaxBytes    int64 `json:"max_bytes,omitempty"`
	Truncated   bool  `json:"truncated,omitempty"`
	Interrupted bool  `json:"interrupted,omitempty"`
	// Release is the kernel the log says it is from, "" if it does not.
	Release    string     `json:"release,omitempty"`
	First      kmsg.Stamp `json:"first"`
	Last       kmsg.Stamp `json:"last"`
	Suppressed uint64     `json:"suppressed"`
	// Since is the --since window; Undated counts failures it could not
	// apply to (a copied log with times since boot only).
	Since   time.Duration `json:"since_ns,omitempty"`
	Undated int           `json:"undated,omitempty"`
	// Total is the failures in the log; those in the window are in
	// Failures, or in Other when their groups did not fit.
	Total int           `json:"total"`
	Other kmsg.Overflow `json:"other"`
	// Unparsed counts lines that name an allocation failure in a form
	// that could not be read; a few are in UnparsedExamples.
	Unparsed         int      `json:"unparsed"`
	UnparsedExamples []string `json:"unparsed_examples,omitempty"`
	Tried            []string `json:"tried,omitempty"`
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
		Bytes: log.Bytes, Truncated: log.Truncated, Interrupted: log.Interrupted,
		First: log.First, Last: log.Last, Suppressed: log.Suppressed, Since: in.LogSince,
		Undated: log.Undated, Total: log.Failures, Other: log.Other,
		Unparsed: log.Unparsed, UnparsedExamples: log.UnparsedExamples, Tried: log.Tried,
	}
	if !log.Regular {
		sum.MaxBytes = log.MaxBytes
	}
	r.Log = sum
	tables := gfpTables{cfg: cfg, log: log, hostRelease: in.Release, logRelease: logRelease(log)}
	for _, g := range log.Groups {
		r.Failures = append(r.Failures, decodeGroup(g, &tables))
	}
	inWindow := log.Failures - log.Before

	f.add("source", "%s", logSource(log))
	if len(log.Tried) > 0 {
		f.add("not readable", "%s", strings.Join(log.Tried, "; "))
	}
	partial := readPartial(log)
	if partial != "" {
		f.add("read", "%s", partial)
	}
	if in.LogSince > 0 {
		f.add("window", "last %s (%d of %d failures in the log)", duration(in.LogSince), inWindow, log.Failures)
	}
	if sum.Undated > 0 {
		f.note("%d failures carry only a time since boot, so --since could not place them; they are counted", sum.Undated)
	}
	if log.Suppressed > 0 {
		f.add("suppressed", "%d more warnings were dropped by the kernel's rate limit (one report per 10 s): the counts below are a lower bound", log.Suppressed)
	}
	if o := log.Other; o.Reports > 0 {
		groups := fmt.Sprintf("%d other groups", o.Groups)
		if !o.GroupsExact {
			groups = fmt.Sprintf("more than %d other groups", o.Groups)
		}
		f.add("not grouped", "%d failures in %s: only the %d most frequent groups are kept, so memory stays bounded", o.Reports, groups, kmsg.MaxGroups)
	}
	if log.Unparsed > 0 {
		f.add("unreadable reports", "%d line%s name an allocation failure in a form that could not be read, e.g. %q", log.Unparsed, plural(uint64(log.Unparsed)), log.UnparsedExamples[0])
	}
	for _, n := range tables.notes {
		f.note("%s", n)
	}
	if len(r.Failures) == 0 && log.Other.Reports == 0 {
		return noFailures(f, in, log, partial)
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
		t.Title = fmt.Sprintf("the %d most frequent of %d groups (--json lists them all)", maxGroupRows, len(r.Failures))
		if log.Other.Reports > 0 {
			t.Title = fmt.Sprintf("the %d most frequent groups (--json lists the %d kept)", maxGroupRows, len(r.Failures))
		}
	}
	f.Tables = append(f.Tables, t)
	f.Notes = append(f.Notes, groupNotes(r.Failures)...)
	other := log.Other.Reports
	total := atomic + sleeping + other
	groups := len(r.Failures) + log.Other.Groups
	f.Summary = fmt.Sprintf("%d failure%s in %d group%s", total, plural(uint64(total)), groups, plural(uint64(groups)))
	if !log.Other.GroupsExact {
		f.Summary = fmt.Sprintf("%d failure%s in more than %d groups", total, plural(uint64(total)), groups)
	}
	if partial != "" {
		f.Summary += " in " + partialShort(log)
	}
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
	if other > 0 {
		f.Why += fmt.Sprintf(" The %d failures of the groups not kept are not decoded: they may be atomic too.", other)
	}
	return f
}

// noFailures is the finding for a log without a failure report in the
// window: "none logged", unless lines that could not be read, or the
// part of the log not read, may hold some.
func noFailures(f Finding, in *Inputs, log *kmsg.Log, partial string) Finding {
	f.Why = "The kernel warns for every allocation it fails without __GFP_NOWARN; no warning means no such failure while these records were kept."
	switch {
	case log.Unparsed > 0:
		f.Severity = Warn
		f.Summary = fmt.Sprintf("none read, but %d line%s name an allocation failure in a form that could not be read", log.Unparsed, plural(uint64(log.Unparsed)))
		f.Why = "The log reports allocation failures this version cannot read (a kernel with another format, or a corrupt copy): their count is all that is known."
		f.Fix = []string{"read the lines themselves: grep -E 'page allocation (failure|stalls)|vmalloc' on the log"}
		return f
	case partial != "":
		f.Severity = Warn
		f.Summary = "none in " + partialShort(log)
		f.Fix = []string{"read all of it: pass --kmsg-max with a larger size, or a regular file"}
		if log.Interrupted {
			f.Fix = nil
		}
		return f
	}
	f.Summary = "none logged"
	if in.LogSince > 0 {
		f.Summary = "none logged in the last " + duration(in.LogSince)
	} else if log.Live {
		f.Summary = "none logged since boot (as far back as the log buffer goes)"
	}
	return f
}

// readPartial says how much of a log was read when not all of it was.
func readPartial(l *kmsg.Log) string {
	switch {
	case l.Interrupted:
		return fmt.Sprintf("interrupted after %s: the counts are of that part", text.Bytes(uint64(l.Bytes), text.TrimZero))
	case l.Truncated && l.Regular:
		return fmt.Sprintf("the first %s, the size the file had when opened; it has grown since", text.Bytes(uint64(l.Bytes), text.TrimZero))
	case l.Truncated:
		return fmt.Sprintf("the first %s of %s and no more (--kmsg-max): a pipe or device may never end", text.Bytes(uint64(l.Bytes), text.TrimZero), l.Source)
	}
	return ""
}

func partialShort(l *kmsg.Log) string {
	if l.Interrupted {
		return "the " + text.Bytes(uint64(l.Bytes), text.TrimZero) + " read before the interruption"
	}
	return "the first " + text.Bytes(uint64(l.Bytes), text.TrimZero) + " read"
}

// maxGroupRows bounds the failure table of the text report.
const maxGroupRows = 12

// groupNotes merges the groups' notes: many groups (one per task of a
// test, say) often have the same explanation. The text shows as many as
// the table has rows.
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
	out := make([]string, 0, min(len(order), maxGroupRows+1))
	for i, n := range order {
		if i == maxGroupRows {
			out = append(out, fmt.Sprintf("%d more notes: --json has each group's", len(order)-i))
			break
		}
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
	if l.Bytes > 0 {
		s += ", " + text.Bytes(uint64(l.Bytes), text.TrimZero)
	}
	if l.First.Known() {
		s += ", " + l.First.String() + " to " + l.Last.String()
	}
	if l.Release != "" {
		s += ", kernel " + l.Release
	}
	return s
}
