package kmsg

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Failure is one allocation failure report from the kernel log.
type Failure struct {
	Kind Kind `json:"kind"`
	// Comm is the task that was current: with an interrupt context that is
	// whatever the interrupt hit ("swapper/0" is the idle task), not the
	// code that asked for memory; Path says who did.
	Comm string `json:"comm"`
	PID  int    `json:"pid,omitempty"`
	CPU  int    `json:"cpu"` // -1 when not printed
	// Order is the allocation order (2^Order pages); -1 for a vmalloc
	// error that does not name one.
	Order int `json:"order"`
	// Mode is the GFP mask; ModeText the flag names the kernel printed
	// after it (4.10+), "" on older kernels.
	Mode      uint64 `json:"mode"`
	ModeKnown bool   `json:"mode_known"`
	ModeText  string `json:"mode_text,omitempty"`
	// Size and Reason describe a vmalloc error ("failed to allocate
	// pages"); StallMs an allocation stall.
	Size        uint64 `json:"size,omitempty"`
	Reason      string `json:"reason,omitempty"`
	StallMs     uint64 `json:"stall_ms,omitempty"`
	Nodemask    string `json:"nodemask,omitempty"`
	Cpuset      string `json:"cpuset,omitempty"`
	MemsAllowed string `json:"mems_allowed,omitempty"`
	// Release is the kernel release from the report's task line, or from
	// the last "Linux version" line before it.
	Release string `json:"release,omitempty"`
	// Boot counts "Linux version" lines before the report, so failures of
	// different boots in one file can be told apart (0: none seen).
	Boot   int    `json:"boot,omitempty"`
	Seq    uint64 `json:"seq"`
	Stamp  Stamp  `json:"stamp"`
	Caller string `json:"caller,omitempty"`
	// Line is the report's first line as logged.
	Line  string  `json:"line"`
	Trace []Frame `json:"trace,omitempty"`
	// TraceCut is the number of frames left out of a group's example.
	TraceCut int         `json:"trace_cut,omitempty"`
	Zones    []ZoneState `json:"zones,omitempty"`
	Path     Path        `json:"path"`
}

// Parser finds allocation failure reports in a stream of log records
// and groups them as they come: its memory does not grow with the
// number of reports.
type Parser struct {
	// Since, when not zero, leaves failures logged before it out of the
	// groups (they are only counted); failures without a wall time are
	// grouped and counted as undated.
	Since time.Time
	// Each, when set, is called with every failure found (tests).
	Each func(Failure)

	grouper    Grouper
	total      int
	before     int
	undated    int
	unparsed   int
	unparsedEx []string
	reportRel  string
	relMixed   bool
	cur        *Failure
	state      int
	section    string
	lines      int // lines since cur's header
	taskSeen   bool
	gap        int // unrelated lines in a row
	release    string
	boot       int
	suppressed uint64
	records    uint64
	first      Stamp
	last       Stamp
}

// Parser states within a report.
const (
	stHeader = iota // between the header and "Call Trace:"
	stTrace
	stMem
)

// Limits that end a report which the log never ends clearly.
const (
	maxReportLines = 800
	maxGap         = 40
	maxFrames      = 256
	// maxField bounds a string kept from a report (a mode's names, a
	// cpuset, a release), maxLine its first line: corrupt input may
	// hold lines of any length.
	maxField = 256
	maxLine  = 1024
	// maxUnparsedExamples is how many unparseable headers are kept to
	// show.
	maxUnparsedExamples = 3
)

// Feed adds the next record.
func (p *Parser) Feed(r Record) {
	p.records++
	if r.Stamp.Known() {
		if !p.first.Known() {
			p.first = r.Stamp
		}
		p.last = r.Stamp
	}
	text := strings.TrimSpace(r.Text)
	if m := linuxVersionRE().FindStringSubmatch(text); m != nil {
		p.finish()
		p.release = clip(m[1], maxField)
		p.boot++
		return
	}
	if m := suppressedRE().FindStringSubmatch(text); m != nil {
		p.suppressed += atou(m[2])
		return
	}
	if h, ok := parseHeader(text); ok {
		// 3.x-4.9 printed a vmalloc line and then the page allocation
		// failure line with the task and mode: one report, not two.
		if c := p.cur; c != nil && c.Kind == KindVmalloc && c.Comm == "" && !c.ModeKnown &&
			p.lines <= 2 && h.kind == KindPage && h.hasComm {
			c.Comm, c.Order, c.Mode, c.ModeKnown, c.ModeText = h.comm, h.order, h.mode, true, h.modeText
			c.Nodemask, c.Cpuset, c.MemsAllowed = h.nodemask, h.cpuset, h.mems
			c.Line = clip(c.Line+" / "+text, maxLine)
			p.lines++
			return
		}
		p.finish()
		p.start(h, r, text)
		return
	}
	if looksLikeFailure(text) {
		p.unparsed++
		if len(p.unparsedEx) < maxUnparsedExamples {
			p.unparsedEx = append(p.unparsedEx, clip(text, maxField))
		}
	}
	c := p.cur
	if c == nil {
		return
	}
	// Lines of another CPU interleaved with the report.
	if c.Caller != "" && r.Caller != "" && r.Caller != c.Caller {
		return
	}
	p.lines++
	if p.lines > maxReportLines {
		p.finish()
		return
	}
	if p.related(text) {
		p.gap = 0
		return
	}
	p.gap++
	if p.gap > maxGap {
		p.finish()
	}
}

// related consumes a line of the current report and says whether it was
// one.
func (p *Parser) related(text string) bool {
	c := p.cur
	switch {
	case text == "":
		return true
	case strings.HasPrefix(text, "Call Trace:") || strings.HasPrefix(text, "Call trace:"):
		p.state = stTrace
		return true
	case text == "Mem-Info:" || strings.HasPrefix(text, "Mem-info:"):
		p.state = stMem
		return true
	case strings.Contains(text, "invoked oom-killer:"):
		p.finish() // an OOM report of its own starts here
		return true
	}
	if t, ok := parseTaskLine(text); ok && !p.taskSeen {
		p.taskSeen = true
		c.PID, c.CPU = t.pid, t.cpu
		if c.Comm == "" {
			c.Comm = t.comm
		}
		if t.release != "" {
			c.Release = clip(t.release, maxField)
		}
		return true
	}
	if m := cpusetLineRE().FindStringSubmatch(text); m != nil && c.Cpuset == "" && p.state == stHeader {
		c.Cpuset, c.MemsAllowed = clip(m[1], maxField), clip(m[2], maxField)
		return true
	}
	if p.state != stMem {
		if fr, isFrame, section, ok := traceLine(text, p.section); ok {
			p.section = section
			if isFrame && len(c.Trace) < maxFrames {
				c.Trace = append(c.Trace, fr)
			}
			if p.state == stHeader {
				p.state = stTrace // 2.6.x may start frames without the line
			}
			return true
		}
		if isRegisterLine(text) {
			return true
		}
	}
	if zones, ok := zoneLine(text, c.Zones); ok {
		c.Zones = zones
		p.state = stMem
		return true
	}
	if p.state == stMem {
		if memEndRE().MatchString(text) {
			p.finish()
			return true
		}
		return memInfoRE().MatchString(text)
	}
	return false
}

var (
	// Lines of the Mem-Info block that are not zone lines.
	memInfoRE = lazyRegexp(`^(?:Node \d|CPU\s+\d+: hi:|lowmem_reserve|Free swap|Total swap|Swap cache stats|\d+ (?:total pagecache|pages|free pages)|[a-z_()]+:\s*-?\d|Swap cache|\[ pid \]|Tasks state)`)
	// The last line show_mem prints.
	memEndRE = lazyRegexp(`^\d+ pages (?:reserved|hwpoisoned|cma reserved)$`)
)

func (p *Parser) start(h header, r Record, text string) {
	c := &Failure{
		Kind: h.kind, Comm: h.comm, CPU: -1, Order: h.order,
		Mode: h.mode, ModeKnown: h.modeKnown, ModeText: clip(h.modeText, maxField),
		Size: h.size, Reason: clip(h.reason, maxField), StallMs: h.stallMs,
		Nodemask: clip(h.nodemask, maxField), Cpuset: clip(h.cpuset, maxField), MemsAllowed: clip(h.mems, maxField),
		Release: p.release, Boot: p.boot,
		Seq: r.Seq, Stamp: r.Stamp, Caller: clip(r.Caller, maxField), Line: clip(text, maxLine),
	}
	p.cur, p.state, p.section, p.lines, p.gap, p.taskSeen = c, stHeader, "", 0, 0, false
}

func (p *Parser) finish() {
	c := p.cur
	if c == nil {
		return
	}
	p.cur = nil
	c.Path = Summarize(c.Trace, c.Comm)
	p.total++
	switch {
	case c.Release == "" || c.Release == p.reportRel:
	case p.reportRel == "":
		p.reportRel = c.Release
	default:
		p.relMixed = true
	}
	if p.Each != nil {
		p.Each(*c)
	}
	if !p.Since.IsZero() {
		if c.Stamp.Wall.IsZero() {
			p.undated++
		} else if c.Stamp.Wall.Before(p.Since) {
			p.before++
			return
		}
	}
	p.grouper.Add(*c)
}

// Result is what a log held.
type Result struct {
	// Groups are the failures grouped, most frequent first: at most
	// MaxGroups; Other counts the reports of the groups beyond.
	Groups []Group  `json:"groups"`
	Other  Overflow `json:"other"`
	// Failures is the number of reports found; Before of them were
	// logged before Since and are in no group. Undated is the number
	// grouped although Since could not be applied to them (a time since
	// boot only).
	Failures int `json:"failures"`
	Before   int `json:"before_since,omitempty"`
	Undated  int `json:"undated,omitempty"`
	// Unparsed counts lines that name an allocation failure but are not
	// in any form known ("page allocation failure: order:x"); a few are
	// in UnparsedExamples.
	Unparsed         int      `json:"unparsed"`
	UnparsedExamples []string `json:"unparsed_examples,omitempty"`
	// Suppressed is the number of warnings the kernel's rate limit left
	// out ("warn_alloc: N callbacks suppressed"): failures happened that
	// are not in Failures (warn_alloc prints at most one per 10 s).
	Suppressed uint64 `json:"suppressed"`
	// Release is from the last "Linux version" line, "" if none.
	Release string `json:"release,omitempty"`
	// ReportRelease is the one release the reports' task lines name, ""
	// if none or several.
	ReportRelease string `json:"report_release,omitempty"`
	// Boots is the number of "Linux version" lines.
	Boots   int    `json:"boots"`
	Records uint64 `json:"records"`
	First   Stamp  `json:"first"`
	Last    Stamp  `json:"last"`
}

// Result ends the stream and returns what was found.
func (p *Parser) Result() Result {
	p.finish()
	groups, other := p.grouper.Groups()
	r := Result{
		Groups: groups, Other: other, Failures: p.total, Before: p.before, Undated: p.undated,
		Unparsed: p.unparsed, UnparsedExamples: p.unparsedEx,
		Suppressed: p.suppressed, Release: p.release, Boots: p.boot,
		Records: p.records, First: p.first, Last: p.last,
	}
	if !p.relMixed {
		r.ReportRelease = p.reportRel
	}
	return r
}

// looksLikeFailure reports whether a line that is no report's header
// still names an allocation failure: a form this parser does not know, or
// a corrupt one, to be counted rather than ignored.
func looksLikeFailure(text string) bool {
	return strings.Contains(text, "page allocation failure") ||
		strings.Contains(text, "page allocation stalls") ||
		strings.Contains(text, "vmalloc error") ||
		strings.Contains(text, "vmalloc: allocation failure") ||
		strings.Contains(text, "vmalloc size") && strings.Contains(text, "allocation failure")
}

// clip cuts s to at most n bytes, at a character boundary, marking the
// cut with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len("…"), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func atou(s string) uint64 {
	var n uint64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' || n > (1<<63)/10 {
			return n
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}
