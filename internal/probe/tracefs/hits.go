package tracefs

import (
	"regexp"
	"strconv"
	"strings"
)

// Hit is one event line of a trace buffer.
type Hit struct {
	Comm  string // task name when the event was recorded ("<...>" if unknown)
	Tid   int    // common_pid: the thread
	Tgid  int    // the process from the kernel's saved-tgid cache (stale for a reused pid until its next switch), 0 unless record-tgid took effect
	CPU   int
	Time  float64 // seconds, in the instance's trace clock
	Event string  // event name, e.g. "mm_page_alloc"; "sys_shmget" for syscalls
	Text  string  // the event's text: after "name: ", or all of "sys_x(args)"
	// Fields holds the key=value pairs of Text ("order" -> "2"). Events
	// that print otherwise (syscalls) leave it empty; use Text.
	Fields map[string]string
}

// Int returns a numeric field (decimal or 0x-hex), or def when missing or
// not a number.
func (h Hit) Int(key string, def int64) int64 {
	v, ok := h.Fields[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		u, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return def
		}
		return int64(u)
	}
	return n
}

// "           comm-123     (    120) [001] d..3.  1086.241307: event: text"
// The comm is printed %16s and may itself contain '-' and spaces, so the
// greedy (.+) followed by -pid keeps the last dash-number pair as the pid.
var traceLine = regexp.MustCompile(`^\s*(.+)-(\d+)\s+(?:\(\s*([-\d]+)\)\s+)?\[(\d+)\]\s+\S+\s+(\d+\.\d+):\s+(.*)$`)

// Most events print "name: text"; syscall events print "sys_x(args)" and
// "sys_x -> ret" without the name.
var eventName = regexp.MustCompile(`^([A-Za-z0-9_.]+)(?:: ?|\(| -> |$)`)

// ParseTrace parses the text of a tracefs "trace" file, skipping comments
// and lines it does not understand.
func ParseTrace(text string) []Hit {
	var hits []Hit
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := traceLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		h := Hit{Comm: strings.TrimSpace(m[1]), Text: m[6]}
		if e := eventName.FindStringSubmatch(m[6]); e != nil {
			h.Event = e[1]
			if strings.HasSuffix(e[0], ":") || strings.HasSuffix(e[0], ": ") {
				h.Text = m[6][len(e[0]):]
			}
		}
		h.Tid, _ = strconv.Atoi(m[2])
		if m[3] != "" {
			h.Tgid, _ = strconv.Atoi(m[3]) // "-------" when unknown: stays 0
		}
		h.CPU, _ = strconv.Atoi(m[4])
		h.Time, _ = strconv.ParseFloat(m[5], 64)
		h.Fields = parseFields(h.Text)
		hits = append(hits, h)
	}
	return hits
}

func parseFields(text string) map[string]string {
	fields := map[string]string{}
	for _, tok := range strings.Fields(text) {
		if k, v, ok := strings.Cut(tok, "="); ok && k != "" {
			fields[k] = v
		}
	}
	return fields
}
