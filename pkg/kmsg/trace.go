package kmsg

import (
	"strings"
)

// Frame is one line of a call trace.
type Frame struct {
	Func   string `json:"func"`
	Offset string `json:"offset,omitempty"` // "0x4fe/0x8d0"
	Module string `json:"module,omitempty"`
	// Unreliable frames are printed with "?": a return address found on
	// the stack that the unwinder could not prove is part of the chain.
	// On kernels without frame pointers or ORC (RHEL 6) every frame is.
	Unreliable bool `json:"unreliable,omitempty"`
	// Section is the stack the frame was on, from the markers before it:
	// "IRQ", "NMI", "SOFTIRQ", "TASK", "EOI" (2.6.x: after the interrupt
	// stack, back on the task's), or "" when no marker was printed.
	Section string `json:"section,omitempty"`
}

var (
	// Frames as x86 (2.6-4.x with addresses, 4.x+ without), arm64 and
	// powerpc print them; markers such as "<IRQ>" may lead the line.
	frameRE   = lazyRegexp(`^((?:<[/A-Z#]{2,10}>\s*)*)(?:\[<?[0-9a-fA-F]{4,16}>?\]\s*)*(\?\s+)?([A-Za-z_.$][\w.$]{0,200})\+(0x[0-9a-fA-F]{1,16}/0x[0-9a-fA-F]{1,16})(?:\s+\[([\w-]{1,64})[^\]]*\])?`)
	markersRE = lazyRegexp(`^(?:<[/A-Z#]{2,10}>\s*)+$`)
	markerRE  = lazyRegexp(`<(/?)([A-Z#]{2,10})>`)
)

// traceLine parses a call-trace line: a frame, possibly after markers, or
// markers alone. section is the stack section in effect before the line;
// the section after it is returned.
func traceLine(text, section string) (fr Frame, isFrame bool, newSection string, ok bool) {
	t := strings.TrimSpace(text)
	if markersRE().MatchString(t) {
		return Frame{}, false, applyMarkers(t, section), true
	}
	m := frameRE().FindStringSubmatch(t)
	if m == nil {
		return Frame{}, false, section, false
	}
	section = applyMarkers(m[1], section)
	return Frame{
		Func:       m[3],
		Offset:     m[4],
		Module:     m[5],
		Unreliable: m[2] != "",
		Section:    section,
	}, true, section, true
}

// applyMarkers follows "<IRQ>", "</IRQ>", "<EOI>", "<TASK>" … in order.
func applyMarkers(s, section string) string {
	for _, m := range markerRE().FindAllStringSubmatch(s, -1) {
		if m[1] == "/" {
			// Leaving a section: what follows is the interrupted
			// task's stack (x86 prints <TASK> next when it knows).
			if section == m[2] {
				section = ""
			}
			continue
		}
		section = m[2]
	}
	return section
}

// isRegisterLine reports lines of the register dump and code bytes that
// follow a trace on x86 and arm64; they belong to the report but say
// nothing we use.
func isRegisterLine(t string) bool {
	for _, p := range []string{"RIP:", "RSP:", "RAX:", "RDX:", "RBP:", "R10:", "R13:", "FS:", "CS:", "CR2:", "DR0:", "DR3:", "Code:", "EIP:", "EAX:", "ESI:", "DS:", "pc :", "lr :", "sp :", "x29:", "Hardware name:", "Workqueue:", "Call Trace:", "Call trace:", "Stack:", "PKRU:", "Modules linked in:", "task:"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	// x86 register lines after the first ("R08: … R09: …") and the raw
	// stack words 3.x printed before the trace.
	return regRE().MatchString(t) || stackWordsRE().MatchString(t)
}

var (
	regRE        = lazyRegexp(`^(?:[RE]?[A-Z0-9]{2,3}|x\d{1,2}): [0-9a-fA-F]{4,16}(?:\s|$)`)
	stackWordsRE = lazyRegexp(`^(?:[0-9a-f]{16}|[0-9a-f]{8})(?: (?:[0-9a-f]{16}|[0-9a-f]{8}))+$`)
)
