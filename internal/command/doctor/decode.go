package doctor

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/pkg/gfp"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

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
	return l.ReportRelease
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
		// The note names no task: groupNotes merges it across groups
		// and lists their tasks in front.
		notes = append(notes, "the task only happened to be running when the interrupt came: the allocation was the kernel's "+orWord(g.Path.Activity, "interrupt")+" work, not the process's")
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
