package verify

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
)

// After startup: the mapping succeeded, but a huge page can still be
// missing at first touch, and the database dies of SIGBUS while warming
// up (PostgreSQL touching shared buffers, MAP_POPULATE): a MAP_NORESERVE
// mapping with the pool short, a private mapping copied on write after
// fork, or a hugetlb cgroup limit, which counts faulted pages and not
// reservations. --follow keeps watching for those faults after the
// startup verdict; a fault seen at any time turns the verdict into a
// failure that names the mapping and the cause.

// HugePageFault: a followed process faulted on a hugetlb mapping and got
// no page (SIGBUS).
const HugePageFault Verdict = "huge_page_fault"

// Stop reasons of the follow phase.
const (
	// StopFollowed: --follow ran out.
	StopFollowed = "followed"
	// StopFollowedExited: everything followed exited during --follow.
	StopFollowedExited = "followed_exited"
)

// Fault is a huge-page fault failure of a followed process.
type Fault struct {
	Time time.Time `json:"time"`
	Pid  uint32    `json:"pid"`
	Tid  uint32    `json:"tid"`
	Comm string    `json:"comm"`
	event.HugeFault
}

// addFault records a fault failure of a followed process.
func (w *watch) addFault(ev event.Event) bool {
	if w.tree != nil && !w.tree.contains(int(ev.Pid)) {
		return false
	}
	f := Fault{Time: ev.Time, Pid: ev.Pid, Tid: ev.Tid, Comm: ev.Comm, HugeFault: *ev.HugeFault}
	w.res.Faults = append(w.res.Faults, f)
	w.opts.Logf("%s", FaultLine(f))
	return true
}

// FaultLine is a fault failure as verify reports it live (unescaped).
func FaultLine(f Fault) string {
	m := f.Mapping
	return fmt.Sprintf("%s[%d] %s at %s in %s %s mapping %s-%s (%s pages, %s): %s: %s", f.Comm, f.Pid, f.Result, f.Address,
		size(m.Size), m.File, m.Start, m.End, size(m.PageSize), f.Reservation, f.Cause, f.Explanation)
}

// followOn watches for --follow after the startup verdict: it handles
// events until the time is up, everything the command started has exited,
// or ctx is done.
func (w *watch) followOn(ctx context.Context, sess event.Source) string {
	w.opts.Logf("following for %s after startup", w.opts.Follow)
	end := time.NewTimer(w.opts.Follow)
	defer end.Stop()
	var tick <-chan time.Time
	if w.place != nil || w.subreaper || w.tree != nil {
		t := time.NewTicker(pollEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ev, ok := <-sess.Events():
			if !ok {
				return StopSignal
			}
			w.handle(ev)
		case <-tick:
			if w.tree != nil && !w.tree.alive() || w.tree == nil && !w.anythingLeft() {
				return StopFollowedExited
			}
		case <-end.C:
			return StopFollowed
		case <-ctx.Done():
			return StopSignal
		}
	}
}

// applyFaults makes fault failures decide the verdict: whatever the
// startup looked like, a process that got SIGBUS on a huge page failed.
func (r *Result) applyFaults() {
	if len(r.Faults) == 0 {
		return
	}
	for _, f := range r.Faults {
		r.Findings = append(r.Findings, FaultLine(f))
	}
	f := r.Faults[0]
	before := ""
	if r.Verdict != NothingSeen {
		before = fmt.Sprintf(" (at startup: %s)", r.Verdict)
	}
	r.Verdict = HugePageFault
	r.Summary = fmt.Sprintf("%s[%d] got %s on a huge page of its %s %s mapping: %s%s", f.Comm, f.Pid, f.Result,
		size(f.Mapping.Size), f.Mapping.File, f.Explanation, before)
	if n := len(r.Faults); n > 1 {
		r.Summary += fmt.Sprintf("; %d faults in all", n)
	}
}

// hugetlbHierarchy is the hierarchy with the hugetlb controller, if any.
func hugetlbHierarchy(procRoot string) (hugetlbcg.Hierarchy, bool) {
	hs, err := hugetlbcg.Hierarchies(filepath.Join(procRoot, "self/mountinfo"))
	if err != nil || len(hs) == 0 {
		return hugetlbcg.Hierarchy{}, false
	}
	return hs[0], true
}

// hugetlbPath is the followed processes' cgroup in the hugetlb hierarchy:
// pid's when it still runs, else the cgroup verify made (when it is in
// that hierarchy) or the one it was asked to follow, else, for a command,
// memtrace's own: verify places the command in one hierarchy only (v2, or
// v1 memory), and in the others, such as a v1 hugetlb hierarchy, the
// command was born in memtrace's cgroup.
func (w *watch) hugetlbPath(h hugetlbcg.Hierarchy, pid int) (string, bool) {
	if pid > 0 {
		if p, err := hugetlbcg.PathOf(h, filepath.Join(w.opts.ProcRoot, fmt.Sprint(pid), "cgroup")); err == nil {
			return p, true
		}
	}
	for _, dir := range []string{w.placeDir(), w.opts.Cgroup} {
		if rel, err := filepath.Rel(h.Root, dir); err == nil && dir != "" && !strings.HasPrefix(rel, "..") {
			return "/" + strings.TrimPrefix(rel, "."), true
		}
	}
	if len(w.opts.Command) > 0 {
		if p, err := hugetlbcg.PathOf(h, filepath.Join(w.opts.ProcRoot, "self/cgroup")); err == nil {
			return p, true
		}
	}
	return "", false
}

func (w *watch) placeDir() string {
	if w.place == nil {
		return ""
	}
	return w.place.dir
}

// cgroupCause names a hugetlb cgroup's reservation limit as the cause of
// a failed huge-page request when it, not the pool, refused the pages:
// mmap and shmget reserve, and the kernel charges the reservation to the
// cgroup (5.7+) before it asks the pool.
func (w *watch) cgroupCause(c *Call) {
	if c.Cause == nil || c.Errno != "ENOMEM" || c.PageSize == 0 {
		return
	}
	h, ok := hugetlbHierarchy(w.opts.ProcRoot)
	if !ok {
		return
	}
	path, ok := w.hugetlbPath(h, int(c.Pid))
	if !ok {
		return
	}
	need := c.Cause.NeededPages * c.PageSize
	chain := hugetlbcg.Chain(h, path, c.PageSize)
	l, refused := hugetlbcg.Refusing(chain, need, true)
	if !refused {
		return
	}
	c.Cause.Kind = "hugetlb_cgroup_rsvd_limit"
	c.Cause.Text = fmt.Sprintf("the hugetlb cgroup %s limits reservations of %s pages to %s (%s) and %s were reserved: the %s request did not fit, whatever the pool (%s)",
		l.Path, size(c.PageSize), size(*l.RsvdLimit), l.RsvdLimitFile, size(*l.RsvdUsage), size(need), poolNote(c.Cause))
	c.Cause.Advice = fmt.Sprintf("raise %s of %s (or remove the limit: echo max > %s in v2)", l.RsvdLimitFile, l.Path, l.RsvdLimitFile)
	c.Cause.Cgroup = &l
}

func poolNote(c *Cause) string {
	if c.Pool == nil {
		return "no pool read"
	}
	return fmt.Sprintf("it had %d free, %d reserved", c.Pool.Free, c.Pool.Reserved)
}

// readLimits reads the hugetlb limits of the followed cgroup for each
// pool's page size, innermost first.
func (w *watch) readLimits() {
	h, ok := hugetlbHierarchy(w.opts.ProcRoot)
	if !ok {
		return
	}
	pid := 0
	if w.res.Command != nil {
		pid = w.res.Command.Pid
	} else if w.opts.Pid != nil {
		pid = *w.opts.Pid
	}
	path, ok := w.hugetlbPath(h, pid)
	if !ok {
		return
	}
	for _, p := range w.res.PoolsBefore {
		w.res.HugetlbLimits = append(w.res.HugetlbLimits, hugetlbcg.Chain(h, path, p.PageSizeKB<<10)...)
	}
}

// alive reports whether the root or a known descendant still runs.
func (t *processTree) alive() bool {
	for p := range t.known {
		if _, err := os.Stat(filepath.Join(t.procRoot, fmt.Sprint(p))); err == nil {
			return true
		}
	}
	return false
}
