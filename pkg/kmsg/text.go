package kmsg

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"
)

// TextOptions say how to date lines of a text log.
type TextOptions struct {
	// Now dates syslog lines, which carry no year: a line is put in Now's
	// year, or the year before when that would be more than a day after
	// Now. Use the file's modification time. Zero means time.Now().
	Now time.Time
	// Boot, when not zero, turns times since boot into wall times (for
	// dmesg output of the running kernel). Leave it zero for a copy from
	// another host or boot: its boot time is not ours.
	Boot time.Time
	// Location is the time zone of syslog and dmesg -T times; nil means
	// time.Local.
	Location *time.Location
}

// maxLineBytes bounds one line of a text log; longer lines (a corrupt or
// binary file) are cut, not a reason to stop.
const maxLineBytes = 64 << 10

// ReadText reads a text log line by line, recognising each line's prefix
// (see ParseLine), and passes the records to fn. Lines without a prefix
// of their own (continuation lines of a multi-line record, a pasted call
// trace) take the time of the line before. Syslog lines of other programs
// and /dev/kmsg dictionary lines are skipped.
func ReadText(r io.Reader, opt TextOptions, fn func(Record)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var p LineParser
	p.Options = opt
	for {
		line, err := readLine(br)
		if len(line) > 0 || err == nil {
			if rec, ok := p.Parse(line); ok {
				fn(rec)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLine returns the next line without its newline, cut at
// maxLineBytes (the rest of a longer line is dropped).
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if len(b) < maxLineBytes {
			b = append(b, chunk[:min(len(chunk), maxLineBytes-len(b))]...)
		}
		if err != nil {
			return string(b), err
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// LineParser turns lines of a text log into Records. It keeps the stamp
// of the last dated line for the lines that follow it.
type LineParser struct {
	Options TextOptions
	n       uint64
	last    Record
	kmsg    bool // the last dated line was a /dev/kmsg record
}

// Parse parses one line. It returns false for lines that are not kernel
// messages (other programs' syslog lines, /dev/kmsg dictionary lines).
//
// Prefixes recognised, outermost first, each optional:
//
//	6,1234,567890,-;                      /dev/kmsg record
//	Oct 24 11:27:42 host kernel:          syslog (/var/log/messages)
//	2025-11-20T21:54:00+0000 host kernel: journalctl -o short-iso
//	2025-11-20T21:54:00,123456+00:00      dmesg --time-format iso
//	kern  :warn  :                        dmesg -x
//	<4>                                   dmesg -r
//	kernel:                               bare
//	[21289.479063] or [Fri Oct 24 11:27:42 2017]
//	[T1234] or [C1]                       printk caller
func (p *LineParser) Parse(line string) (Record, bool) {
	p.n++
	line = strings.TrimRight(line, "\r")
	rec := Record{Seq: p.n, Level: -1}
	dated := false

	if m := kmsgPrefixRE().FindStringSubmatch(line); m != nil {
		if l, ok := parseKmsgPrefix(m[1]); ok {
			rec = l.Record
			rec.Stamp = stampFromUptime(rec.Stamp.Uptime, p.Options.Boot)
			p.kmsg = true
			lines := strings.Split(unescapeKmsg(line[len(m[0]):]), "\n")
			// A text copy of one record holds one line; escaped newlines
			// (Mem-Info) are joined back with spaces, which the parsers
			// here accept.
			rec.Text = strings.Join(lines, " ")
			p.last = rec
			return rec, true
		}
	}
	if p.kmsg && strings.HasPrefix(line, " ") && dictLineRE().MatchString(line) {
		return Record{}, false
	}

	rest := line
	if m := syslogRE().FindStringSubmatch(rest); m != nil {
		prog := m[3]
		if !isKernelProgram(prog) {
			return Record{}, false
		}
		if t, ok := p.syslogTime(m[1]); ok {
			rec.Stamp.Wall, dated = t, true
		}
		rest = strings.TrimPrefix(rest[len(m[0]):], " ")
		// RHEL 6 rsyslog wrote "kernel: : [21289.479063] ..." for some
		// lines.
		if strings.HasPrefix(rest, ": [") {
			rest = rest[2:]
		}
	} else if m := isoRE().FindStringSubmatch(rest); m != nil {
		if t, ok := parseISO(m[1]); ok {
			rec.Stamp.Wall, dated = t, true
		}
		rest = rest[len(m[0]):]
		if h := isoHostRE().FindStringSubmatch(rest); h != nil {
			if !isKernelProgram(h[1]) {
				return Record{}, false
			}
			rest = strings.TrimPrefix(rest[len(h[0]):], " ")
		}
	}
	if m := dmesgXRE().FindStringSubmatch(rest); m != nil {
		rec.Level = levelNames[m[1]]
		rest = rest[len(m[0]):]
	}
	if m := rawPrioRE().FindStringSubmatch(rest); m != nil {
		if v, err := strconv.Atoi(m[1]); err == nil {
			rec.Level = v & 7
		}
		rest = rest[len(m[0]):]
	}
	if r, ok := strings.CutPrefix(rest, "kernel: "); ok {
		rest = r
	}
	if m := uptimeRE().FindStringSubmatch(rest); m != nil {
		if d, ok := parseUptime(m[1], m[2]); ok {
			rec.Stamp.Uptime, rec.Stamp.HasUptime, dated = d, true, true
			if rec.Stamp.Wall.IsZero() && !p.Options.Boot.IsZero() {
				rec.Stamp.Wall = p.Options.Boot.Add(d)
			}
		}
		rest = rest[len(m[0]):]
	} else if m := ctimeRE().FindStringSubmatch(rest); m != nil {
		if t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", m[1], p.loc()); err == nil {
			rec.Stamp.Wall, dated = t, true
		}
		rest = rest[len(m[0]):]
	}
	if m := callerRE().FindStringSubmatch(rest); m != nil {
		rec.Caller = m[1]
		rest = rest[len(m[0]):]
	}
	rec.Text = rest
	if dated {
		p.kmsg = false
		p.last = rec
		return rec, true
	}
	// An undated line continues the last dated one.
	rec.Stamp = p.last.Stamp
	if rec.Caller == "" {
		rec.Caller = p.last.Caller
	}
	if rec.Level < 0 {
		rec.Level = p.last.Level
	}
	return rec, true
}

var (
	kmsgPrefixRE = lazyRegexp(`^(\d{1,3},\d{1,20},\d{1,20},[^;,]*(?:,[^;]*)?);`)
	dictLineRE   = lazyRegexp(`^ [A-Z_]+=`)
	// The host may be missing (an empty field, so two spaces), as in the
	// seed's RHEL 6 log.
	syslogRE  = lazyRegexp(`^((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d)(?:\.\d+)? +(?:(\S+) +)??([\w./-]+(?:\[\d+\])?):(?: |$)`)
	isoRE     = lazyRegexp(`^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) +`)
	isoHostRE = lazyRegexp(`^\S+ ([\w./-]+(?:\[\d+\])?):(?: |$)`)
	dmesgXRE  = lazyRegexp(`^[a-z0-9]+ *:(emerg|alert|crit|err|warn|notice|info|debug) *: `)
	rawPrioRE = lazyRegexp(`^<(\d{1,3})>`)
	uptimeRE  = lazyRegexp(`^\[ *(\d{1,20})\.(\d{1,9})\] ?`)
	ctimeRE   = lazyRegexp(`^\[((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4})\] ?`)
	callerRE  = lazyRegexp(`^\[ *([TC]\d{1,10})\] ?`)
)

var levelNames = map[string]int{"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}

// isKernelProgram reports whether a syslog program field is the kernel's.
func isKernelProgram(prog string) bool {
	return prog == "kernel" || strings.HasPrefix(prog, "kernel[")
}

func (p *LineParser) loc() *time.Location {
	if p.Options.Location != nil {
		return p.Options.Location
	}
	return time.Local
}

// syslogTime dates "Oct 24 11:27:42", which has no year.
func (p *LineParser) syslogTime(s string) (time.Time, bool) {
	now := p.Options.Now
	if now.IsZero() {
		now = time.Now()
	}
	t, err := time.ParseInLocation("Jan _2 15:04:05 2006", s+" "+strconv.Itoa(now.Year()), p.loc())
	if err != nil {
		return time.Time{}, false
	}
	if t.After(now.Add(24 * time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	return t, true
}

func parseISO(s string) (time.Time, bool) {
	s = strings.Replace(s, ",", ".", 1)
	s = strings.Replace(s, " ", "T", 1)
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseUptime reads "21289" "479063" (seconds, fraction).
func parseUptime(sec, frac string) (time.Duration, bool) {
	s, err := strconv.ParseUint(sec, 10, 64)
	if err != nil || time.Duration(s) > maxUptime/time.Second {
		return 0, false
	}
	for len(frac) < 9 {
		frac += "0"
	}
	ns, err := strconv.ParseUint(frac[:9], 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(s)*time.Second + time.Duration(ns), true
}
