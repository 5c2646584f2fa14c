package kmsg

import (
	"strings"
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
	Line  string      `json:"line"`
	Trace []Frame     `json:"trace,omitempty"`
	Zones []ZoneState `json:"zones,omitempty"`
	Path  Path        `json:"path"`
}

// Parser finds allocation failure reports in a stream of log records.
type Parser struct {
	failures   []Failure
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
	maxFailures    = 1 << 20
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
		p.release = m[1]
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
			c.Line += " / " + text
			p.lines++
			return
		}
		p.finish()
		p.start(h, r, text)
		return
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
			c.Release = t.release
		}
		return true
	}
	if m := cpusetLineRE().FindStringSubmatch(text); m != nil && c.Cpuset == "" && p.state == stHeader {
		c.Cpuset, c.MemsAllowed = m[1], m[2]
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
		Mode: h.mode, ModeKnown: h.modeKnown, ModeText: h.modeText,
		Size: h.size, Reason: h.reason, StallMs: h.stallMs,
		Nodemask: h.nodemask, Cpuset: h.cpuset, MemsAllowed: h.mems,
		Release: p.release, Boot: p.boot,
		Seq: r.Seq, Stamp: r.Stamp, Caller: r.Caller, Line: text,
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
	if len(p.failures) < maxFailures {
		p.failures = append(p.failures, *c)
	}
}

// Result is what a log held.
type Result struct {
	Failures []Failure `json:"failures"`
	// Suppressed is the number of warnings the kernel's rate limit left
	// out ("warn_alloc: N callbacks suppressed"): failures happened that
	// are not in Failures (warn_alloc prints at most one per 10 s).
	Suppressed uint64 `json:"suppressed"`
	// Release is from the last "Linux version" line, "" if none.
	Release string `json:"release,omitempty"`
	// Boots is the number of "Linux version" lines.
	Boots   int    `json:"boots"`
	Records uint64 `json:"records"`
	First   Stamp  `json:"first"`
	Last    Stamp  `json:"last"`
}

// Result ends the stream and returns what was found.
func (p *Parser) Result() Result {
	p.finish()
	return Result{
		Failures: p.failures, Suppressed: p.suppressed, Release: p.release,
		Boots: p.boot, Records: p.records, First: p.first, Last: p.last,
	}
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
