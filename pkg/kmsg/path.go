package kmsg

import (
	"strings"
)

// Path is a call trace summarised for a human: in what context the
// allocation ran, what the kernel was doing, and the two or three frames
// that say it ("softirq network receive: tcp_v4_rcv → sk_clone").
type Path struct {
	// Context is "softirq", "hardirq", "nmi", "process" or "kernel
	// thread"; "" when the trace does not tell.
	Context string `json:"context,omitempty"`
	// Activity is what the code was doing: "network receive", "fsetxattr
	// system call", "page fault", … ; "" when no frame is known.
	Activity string `json:"activity,omitempty"`
	// Frames are the telling frames, caller first.
	Frames []string `json:"frames,omitempty"`
}

// String is the one-line form.
func (p Path) String() string {
	var b strings.Builder
	phrase := p.Phrase()
	b.WriteString(phrase)
	if len(p.Frames) > 0 {
		if phrase != "" {
			b.WriteString(": ")
		}
		b.WriteString(strings.Join(p.Frames, " → "))
	}
	if b.Len() == 0 {
		return "no call trace"
	}
	return b.String()
}

// Phrase is the context and activity, without the frames.
func (p Path) Phrase() string {
	switch {
	case p.Activity == "":
		return p.Context
	case p.Context == "" || p.Context == "process" || p.Context == "kernel thread":
		// "fsetxattr system call", "page fault", "kswapd" already say it.
		return p.Activity
	}
	return p.Context + " " + p.Activity
}

// Summarize turns a call trace (innermost frame first, as printed) into a
// Path. comm is the task name, used to tell kernel threads apart.
func Summarize(frames []Frame, comm string) Path {
	fs := usableFrames(frames)
	var p Path
	p.Context = traceContext(fs, comm)

	// The site is the innermost frame that is neither allocator nor
	// plumbing: the code that asked for memory.
	site := -1
	for i, f := range fs {
		if !allocatorFrame(f.Func) && !plumbingFrame(f.Func) {
			site = i
			break
		}
	}
	if site < 0 {
		return p
	}
	// The anchor is the innermost frame, at or beyond the site, that
	// names an activity; a system call is looked for separately since
	// it is the outermost frame of a task's stack.
	anchor, sysc := -1, -1
	for i := site; i < len(fs); i++ {
		fn := fs[i].Func
		if anchor < 0 {
			if a, ok := matchActivity(fn); ok {
				anchor = i
				p.Activity = a.what
				if p.Context == "" && a.context != "" {
					p.Context = a.context
				}
				if a.what == "workqueue" && i > 0 {
					// The work function is the frame process_one_work
					// called: it names the work.
					p.Activity = "workqueue " + fs[i-1].Func
				}
			}
		}
		if sysc < 0 {
			if name, ok := syscallName(fs[i:]); ok {
				sysc = i
				if anchor < 0 {
					p.Activity = name + " system call"
					if p.Context == "" {
						p.Context = "process"
					}
				}
			}
		}
	}
	switch {
	case anchor >= 0 && anchor != site && !strings.HasPrefix(p.Activity, "workqueue"):
		p.Frames = []string{fs[anchor].Func, fs[site].Func}
	case anchor >= 0 && anchor == site:
		// The activity frame allocated itself: name its caller too.
		p.Frames = []string{fs[site].Func}
		for i := site + 1; i < len(fs) && i != sysc; i++ {
			if fn := fs[i].Func; !allocatorFrame(fn) && !plumbingFrame(fn) {
				p.Frames = []string{fn, fs[site].Func}
				break
			}
		}
	default:
		// No activity frame, or one that already names the work: the
		// site and its informative callers, up to the system call.
		limit := len(fs)
		if sysc >= 0 {
			limit = sysc
		}
		if anchor >= 0 {
			limit = min(limit, anchor)
		}
		want := 3
		if sysc >= 0 || anchor >= 0 {
			want = 2
		}
		var chain []string
		for i := site; i < limit && len(chain) < want; i++ {
			fn := fs[i].Func
			if allocatorFrame(fn) || plumbingFrame(fn) {
				continue
			}
			chain = append(chain, fn)
		}
		for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
			chain[i], chain[j] = chain[j], chain[i]
		}
		p.Frames = chain
	}
	return p
}

// usableFrames drops "?" frames when the unwinder proved some frames
// reliable: the "?" ones are then stale return addresses. When every frame
// is "?" (no frame pointers, as on RHEL 6) they are all we have.
func usableFrames(frames []Frame) []Frame {
	reliable := 0
	for _, f := range frames {
		if !f.Unreliable {
			reliable++
		}
	}
	if reliable == 0 {
		return dedupe(frames)
	}
	out := make([]Frame, 0, reliable)
	for _, f := range frames {
		if !f.Unreliable {
			out = append(out, f)
		}
	}
	return dedupe(out)
}

// dedupe names frames by their base name and drops a frame repeated
// right after itself (2.6.x printed "tcp_v4_rcv" twice in the seed's
// trace).
func dedupe(fs []Frame) []Frame {
	out := make([]Frame, 0, len(fs))
	for _, f := range fs {
		f.Func = baseName(f.Func)
		if n := len(out); n > 0 && out[n-1].Func == f.Func {
			continue
		}
		out = append(out, f)
	}
	return out
}

// syscallName returns "fsetxattr" when fs[0] is "__x64_sys_fsetxattr".
// The old bare "sys_" spelling also names other functions (fbdev's
// sys_imageblit), so it counts only as the outermost frame before the
// entry code.
func syscallName(fs []Frame) (string, bool) {
	fn := fs[0].Func
	for i, p := range syscallPrefixes {
		name, ok := strings.CutPrefix(fn, p)
		if !ok || name == "" || strings.HasPrefix(name, "call") {
			continue
		}
		if i >= bareSyscallPrefixes {
			for _, f := range fs[1:] {
				if !plumbingFrame(f.Func) {
					return "", false
				}
			}
		}
		return name, true
	}
	return "", false
}

// traceContext tells where the allocation ran: the stack markers say it
// on x86 ("<IRQ>", "<NMI>", "<TASK>"), the softirq entry frames say which
// kind of interrupt.
func traceContext(fs []Frame, comm string) string {
	var irq, nmi, task, softirq bool
	for _, f := range fs {
		switch f.Section {
		case "NMI":
			nmi = true
		case "IRQ", "SOFTIRQ":
			irq = true
			if f.Section == "SOFTIRQ" {
				softirq = true
			}
		case "TASK", "EOI":
			task = true
		}
		if softirqFrames[f.Func] && (f.Section == "" || f.Section == "IRQ" || f.Section == "SOFTIRQ") {
			softirq = true
		}
	}
	// Context is that of the innermost frame.
	inner := ""
	if len(fs) > 0 {
		inner = fs[0].Section
	}
	switch {
	case nmi && inner == "NMI":
		return "nmi"
	case softirq && (inner == "IRQ" || inner == "SOFTIRQ" || inner == ""):
		return "softirq"
	case irq && inner == "IRQ":
		return "hardirq"
	case task || inner == "TASK":
		if isKernelThread(fs) {
			return "kernel thread"
		}
		return "process"
	}
	if isKernelThread(fs) {
		return "kernel thread"
	}
	return ""
}

func isKernelThread(fs []Frame) bool {
	for _, f := range fs {
		if f.Func == "kthread" || f.Func == "worker_thread" {
			return true
		}
	}
	return false
}

// baseName drops the suffixes the compiler adds to a function it has
// cloned or split ("warn_alloc.cold.116", "do_replace.constprop.0",
// "__kmalloc_reserve.isra.32"): C names have no dots of their own.
func baseName(fn string) string {
	if i := strings.IndexByte(fn, '.'); i > 0 {
		return fn[:i]
	}
	return fn
}
