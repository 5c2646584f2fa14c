package kmsg

import (
	"strconv"
	"strings"
)

// Kind is what kind of allocation failure the kernel reported.
type Kind string

const (
	// KindPage is "page allocation failure: order:N, mode:0x…" from
	// warn_alloc (warn_alloc_failed before 4.10; "failure. order" with a
	// dot on 2.6.x).
	KindPage Kind = "page"
	// KindVmalloc is a vmalloc that could not get its pages: "vmalloc
	// error: size N, …" (5.14+), "vmalloc: allocation failure: N bytes"
	// (4.x-5.13) or "vmalloc: allocation failure, allocated A of N bytes"
	// (2.6.x-4.x; on 3.x and 4.0-4.9 followed by a page allocation failure
	// line with the mode).
	KindVmalloc Kind = "vmalloc"
	// KindStall is "page allocation stalls for Nms, order:N" (4.13-4.14):
	// not a failure, an allocation that has been retrying for long.
	KindStall Kind = "stall"
)

// header is what the first line of a report says.
type header struct {
	kind      Kind
	comm      string
	hasComm   bool
	order     int
	mode      uint64
	modeKnown bool
	modeText  string
	size      uint64
	reason    string
	stallMs   uint64
	nodemask  string
	cpuset    string
	mems      string
}

// maxCommPrefix bounds the task name before ": page allocation failure";
// TASK_COMM_LEN is 16, the margin is for prefixes we did not strip.
const maxCommPrefix = 64

var (
	pageRE  = lazyRegexp(`^page allocation failure[.:] order:(\d{1,3}), mode:(0x[0-9a-fA-F]{1,16}|0)(?:\(|[,\s]|$)`)
	stallRE = lazyRegexp(`^page allocation stalls for (\d{1,12})ms, order:(\d{1,3}), mode:(0x[0-9a-fA-F]{1,16}|0)(?:\(|[,\s]|$)`)
	// The vmalloc forms; their mode, when there is one, follows as
	// ", mode:0x…(…), nodemask=…".
	vmallocErrorRE = lazyRegexp(`^vmalloc error: size (\d{1,20}), (.*?)(?:, mode:|$)`)
	vmallocSizeRE  = lazyRegexp(`^vmalloc size (\d{1,20}) allocation failure: (.*?)(?:, mode:|$)`)
	vmallocBytesRE = lazyRegexp(`^vmalloc: allocation failure: (\d{1,20}) bytes`)
	vmallocOfRE    = lazyRegexp(`^vmalloc: allocation failure, allocated (\d{1,20}) of (\d{1,20}) bytes`)
	modeRE         = lazyRegexp(`mode:(0x[0-9a-fA-F]{1,16}|0)(?:\(([^)]*)\))?(?:[,\s]|$)`)
	nodemaskRE     = lazyRegexp(`nodemask=([^,\s]*)`)
	cpusetRE       = lazyRegexp(`cpuset=([^,]*),mems_allowed=(\S*)`)
	pageOrderRE    = lazyRegexp(`page order (\d{1,3})`)
)

// FailureLine recognises the first line of an allocation failure report
// (or of an allocation stall) as the kernel log holds it, in the forms of
// 2.6 to 6.x, and returns its kind and the task name before it ("" for
// the task-less vmalloc line of 2.6-4.9).
func FailureLine(text string) (kind Kind, comm string, ok bool) {
	h, ok := parseHeader(text)
	return h.kind, h.comm, ok
}

// parseHeader recognises the first line of an allocation failure report.
func parseHeader(text string) (header, bool) {
	text = strings.TrimSpace(text)
	// Forms without a task name: the vmalloc line of 2.6.x-4.9, printed
	// on a line of its own.
	if strings.HasPrefix(text, "vmalloc") {
		if h, ok := parseVmalloc(text); ok {
			return h, true
		}
		return header{}, false
	}
	i := strings.Index(text, ": ")
	for i >= 0 && i <= maxCommPrefix {
		rest := text[i+2:]
		if h, ok := parseAfterComm(rest); ok {
			h.comm, h.hasComm = text[:i], true
			return h, true
		}
		// A task name may itself hold ": ".
		j := strings.Index(rest, ": ")
		if j < 0 {
			break
		}
		i += 2 + j
	}
	return header{}, false
}

func parseAfterComm(rest string) (header, bool) {
	switch {
	case strings.HasPrefix(rest, "page allocation failure"):
		m := pageRE().FindStringSubmatch(rest)
		if m == nil {
			return header{}, false
		}
		h := header{kind: KindPage}
		h.order, _ = strconv.Atoi(m[1])
		h.parseMode(rest)
		return h, h.modeKnown
	case strings.HasPrefix(rest, "page allocation stalls"):
		m := stallRE().FindStringSubmatch(rest)
		if m == nil {
			return header{}, false
		}
		h := header{kind: KindStall}
		h.stallMs, _ = strconv.ParseUint(m[1], 10, 64)
		h.order, _ = strconv.Atoi(m[2])
		h.parseMode(rest)
		return h, h.modeKnown
	case strings.HasPrefix(rest, "vmalloc"):
		return parseVmalloc(rest)
	}
	return header{}, false
}

func parseVmalloc(text string) (header, bool) {
	h := header{kind: KindVmalloc, order: -1}
	var sizeStr string
	switch {
	case vmallocErrorRE().MatchString(text):
		m := vmallocErrorRE().FindStringSubmatch(text)
		sizeStr, h.reason = m[1], m[2]
	case vmallocSizeRE().MatchString(text):
		m := vmallocSizeRE().FindStringSubmatch(text)
		sizeStr, h.reason = m[1], m[2]
	case vmallocBytesRE().MatchString(text):
		sizeStr = vmallocBytesRE().FindStringSubmatch(text)[1]
		h.reason = "allocation failure"
	case vmallocOfRE().MatchString(text):
		m := vmallocOfRE().FindStringSubmatch(text)
		sizeStr = m[2]
		h.reason = "allocated " + m[1] + " of " + m[2] + " bytes"
	default:
		return header{}, false
	}
	var err error
	if h.size, err = strconv.ParseUint(sizeStr, 10, 64); err != nil {
		return header{}, false
	}
	if m := pageOrderRE().FindStringSubmatch(h.reason); m != nil {
		h.order, _ = strconv.Atoi(m[1])
	}
	h.parseMode(text)
	return h, true
}

// parseMode reads ", mode:0x…(names), nodemask=…,cpuset=…,mems_allowed=…".
func (h *header) parseMode(text string) {
	if m := modeRE().FindStringSubmatch(text); m != nil {
		v, err := strconv.ParseUint(strings.TrimPrefix(m[1], "0x"), 16, 64)
		if err == nil {
			h.mode, h.modeKnown, h.modeText = v, true, m[2]
		}
	}
	if m := nodemaskRE().FindStringSubmatch(text); m != nil {
		h.nodemask = m[1]
	}
	if m := cpusetRE().FindStringSubmatch(text); m != nil {
		h.cpuset, h.mems = m[1], m[2]
	}
}

var (
	// "CPU: 1 UID: 0 PID: 17681 Comm: f Not tainted 6.18.44-fc-v669 #1"
	// (UID since 6.11), "CPU: 7 PID: 1 Comm: x Tainted: G  OE 3.10.0-957.el7.x86_64 #1".
	cpuLineRE = lazyRegexp(`^CPU: (\d{1,6}) (?:UID: \d+ )?PID: (\d{1,10}) Comm: (.{0,64}?)(?: Kdump: loaded)? (?:Not tainted|Tainted:)`)
	// 2.6.32: "Pid: 0, comm: swapper Not tainted 2.6.32-358.2.1.el6.x86_64 #1".
	pidLineRE = lazyRegexp(`^Pid: (\d{1,10}), comm: (.{0,64}?)(?: Kdump: loaded)? (?:Not tainted|Tainted:)`)
	// The release is the word before " #N" on those lines.
	releaseRE      = lazyRegexp(`(?:Not tainted|Tainted:.*?)\s(\d+\.\d+[\w.+~-]*) #\d`)
	linuxVersionRE = lazyRegexp(`^Linux version (\d+\.\d+[\w.+~-]*)`)
	// 4.x printed the cpuset on a line of its own: "comm cpuset=/ mems_allowed=0-1".
	cpusetLineRE = lazyRegexp(`^.{0,64} cpuset=(\S*) mems_allowed=(\S*)$`)
	suppressedRE = lazyRegexp(`^(warn_alloc(?:_failed)?|__alloc_pages_nodemask|__vmalloc_node_range\w*): (\d{1,12}) callbacks suppressed`)
)

// taskLine is the "CPU: … PID: … Comm: …" line that dump_stack prints.
type taskLine struct {
	cpu, pid int
	comm     string
	release  string
}

func parseTaskLine(text string) (taskLine, bool) {
	t := taskLine{cpu: -1}
	if m := cpuLineRE().FindStringSubmatch(text); m != nil {
		t.cpu, _ = strconv.Atoi(m[1])
		t.pid, _ = strconv.Atoi(m[2])
		t.comm = m[3]
	} else if m := pidLineRE().FindStringSubmatch(text); m != nil {
		t.pid, _ = strconv.Atoi(m[1])
		t.comm = m[2]
	} else {
		return t, false
	}
	if m := releaseRE().FindStringSubmatch(text); m != nil {
		t.release = m[1]
	}
	return t, true
}
