package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Options select what to follow and when to conclude. Exactly one of
// Command, Pid, Comm and Cgroup is set.
type Options struct {
	// Command is started and followed with all its children.
	Command []string
	// Pid, if set, follows a running process and the children it starts.
	Pid *int
	// Comm follows every process with this name (up to 15 characters).
	Comm string
	// Cgroup follows every process of a cgroup (path, v2 or v1 memory).
	Cgroup string

	// MinSize is the smallest shared mapping the verdict considers.
	MinSize uint64
	// Timeout bounds the watch (0: until ctx is done).
	Timeout time.Duration
	// Settle ends the watch once a large mapping was seen and nothing
	// else happened for this long.
	Settle time.Duration
	// Follow keeps watching this long after the startup verdict for huge
	// pages missing at fault time (SIGBUS during warm-up); 0: not at all
	// (faults seen before the verdict still count).
	Follow time.Duration

	ProcRoot, SysRoot string
	// Start starts the probes for what Run follows (cmd/memtrace passes
	// loader.Start: huge-page calls only, see Filter).
	Start func(Filter) (event.Source, error)
	// Stdin and Output are the command's standard input (nil: /dev/null)
	// and its standard output and error (nil: os.Stderr, so that a
	// verdict on standard output stays machine-readable).
	Stdin, Output *os.File
	// OnReady runs once the probes are attached, before the command
	// starts; OnCall for each call as it is seen; Logf for progress.
	OnReady func(hooks []event.HookStatus)
	OnCall  func(Call)
	Logf    func(format string, args ...any)
}

// Filter is what verify asks of the probes: huge-page calls only, shared
// mappings from MinSize on (and from MinSize, or the probes' default if
// smaller, after a failed huge-page request), made by the processes of
// Comm or CgroupID when set, filtered in the kernel.
type Filter struct {
	Comm     string
	CgroupID uint64
	MinSize  uint64
}

// Result is a verify run: what was seen, the kernel's confirmation, and
// the verdict.
type Result struct {
	Outcome
	Target            string              `json:"target"`
	Follow            string              `json:"follow"`
	Start             time.Time           `json:"start"`
	End               time.Time           `json:"end"`
	StopReason        string              `json:"stop_reason"`
	Command           *CommandResult      `json:"command,omitempty"`
	Hooks             []event.HookStatus  `json:"hooks"`
	DefaultPageSizeKB uint64              `json:"default_page_size_kb"`
	MinSize           uint64              `json:"min_size"`
	PoolsBefore       []sysstate.HugePool `json:"pools_before"`
	Calls             []Call              `json:"calls"`
	Fallbacks         []Fallback          `json:"fallbacks"`
	Confirmations     []Confirmation      `json:"confirmations"`
	// Faults are the followed processes' faults on hugetlb mappings that
	// got no page (SIGBUS), with the cause.
	Faults []Fault `json:"huge_page_faults"`
	// HugetlbLimits are the hugetlb cgroup limits over the followed
	// processes, per page size, innermost cgroup first.
	HugetlbLimits []hugetlbcg.Limits `json:"hugetlb_limits,omitempty"`
	Lost          uint64             `json:"lost_events"`
	Warnings      []string           `json:"warnings,omitempty"`
}

// CommandResult is how the started command ended, if it did.
type CommandResult struct {
	Argv     []string `json:"argv"`
	Pid      int      `json:"pid"`
	Exited   bool     `json:"exited"`
	ExitCode int      `json:"exit_code"`
	Error    string   `json:"error,omitempty"`
}

// Stop reasons.
const (
	StopCommandExited = "command_exited"
	StopSettled       = "settled"
	StopTimeout       = "timeout"
	StopSignal        = "signal"
)

// DefaultMinSize is the default of MinSize: smaller shared mappings are
// listed but do not decide the verdict.
const DefaultMinSize = 64 << 20

// Run watches until the verdict can be given and returns it. Errors are
// failures to watch at all (no privileges, no hook, command not found).
func Run(ctx context.Context, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Start == nil {
		return nil, errors.New("verify: no start function for the probes")
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	if opts.MinSize == 0 {
		opts.MinSize = DefaultMinSize
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	snap := sysstate.Take(opts.ProcRoot, opts.SysRoot)
	res := &Result{
		Start: time.Now().UTC(), DefaultPageSizeKB: snap.Memory.HugepageSizeKB,
		MinSize: opts.MinSize, PoolsBefore: snap.HugePools,
		Calls: []Call{}, Fallbacks: []Fallback{}, Confirmations: []Confirmation{}, Faults: []Fault{},
	}
	w := &watch{opts: opts, res: res, an: NewAnalyzer(opts.MinSize), self: os.Getpid()}
	defer w.cleanup()

	filter, err := w.follow()
	if err != nil {
		return nil, err
	}
	sess, err := opts.Start(filter)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	res.Hooks = sess.Hooks()
	if !event.Attached(res.Hooks, event.SignalHugetlb) {
		return nil, fmt.Errorf("no hook for huge-page calls on this kernel: %s", rejections(res.Hooks))
	}
	if !event.Attached(res.Hooks, event.SignalHugefault) {
		res.Warnings = append(res.Warnings, "no hook for huge-page fault failures on this kernel: a SIGBUS on a huge page would go unseen")
	}
	if opts.OnReady != nil {
		opts.OnReady(res.Hooks)
	}
	if len(opts.Command) > 0 {
		// Interrupted while starting up (loading the programs takes a
		// while): the command is not started at all.
		if ctx.Err() != nil {
			res.Warnings = append(res.Warnings, "interrupted before the command started: it was not run")
		} else if w.exited, err = w.startCommand(); err != nil {
			return nil, err
		}
	}
	res.StopReason = w.loop(ctx, sess)
	if opts.Follow > 0 && ctx.Err() == nil && res.StopReason != StopTimeout {
		res.StopReason = w.followOn(ctx, sess)
	}
	w.readLimits()
	if ctx.Err() != nil {
		res.StopReason = StopSignal
		w.interrupted()
	}

	// Detach, then read what is still in the ring buffer.
	if err := sess.Stop(); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("detaching probes: %v", err))
	}
	for ev := range sess.Events() {
		w.handle(ev)
	}
	if stats, err := sess.Stats(); err == nil {
		res.Lost = stats[event.SignalHugetlb].Lost
	}
	if res.Lost > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d events were lost (ring buffer full): the verdict may miss calls", res.Lost))
	}
	res.Confirmations = Confirm(opts.ProcRoot, w.an)
	for _, c := range res.Confirmations {
		if c.Found && !c.Agrees {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the kernel disagrees about call %d: %s is hugetlb=%v", c.Seq, c.What, c.Hugetlb))
		}
	}
	if err := sess.Close(); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("closing probes: %v", err))
	}
	res.Calls = append(res.Calls, w.an.Calls()...)
	res.Fallbacks = append(res.Fallbacks, w.an.Fallbacks()...)
	res.Outcome = w.an.Outcome()
	res.applyFaults()
	res.End = time.Now().UTC()
	return res, nil
}

// watch is the state of one Run.
type watch struct {
	opts  Options
	res   *Result
	an    *Analyzer
	self  int
	place *placement
	tree  *processTree
	// subreaper is set when memtrace made itself a child subreaper.
	subreaper bool
	// exited receives the command's exit (nil: no command, or its exit
	// was received).
	exited <-chan error
}

// follow decides how the target is followed and returns the kernel
// filter for it.
func (w *watch) follow() (Filter, error) {
	cfg := Filter{MinSize: w.opts.MinSize}
	o := w.opts
	switch {
	case len(o.Command) > 0:
		w.res.Target = fmt.Sprintf("command %q and its children", o.Command)
		p, err := makePlacement(o.ProcRoot, fmt.Sprintf("memtrace-verify-%d", w.self))
		if err == nil {
			w.place = p
			cfg.CgroupID = p.id
			kind := "v1 memory"
			if p.v2 {
				kind = "v2"
			}
			w.res.Follow = fmt.Sprintf("cgroup %s (%s), filtered in the kernel", p.dir, kind)
			break
		}
		w.res.Warnings = append(w.res.Warnings, fmt.Sprintf("no cgroup for the command (%v): following its process tree instead", err))
		w.res.Follow = "process tree (PPid links in /proc), filtered by memtrace"
		w.subreaper = setSubreaper(true) == nil
	case o.Pid != nil:
		pid := *o.Pid
		if _, err := os.Stat(fmt.Sprintf("%s/%d", o.ProcRoot, pid)); err != nil {
			return cfg, fmt.Errorf("no process %d", pid)
		}
		w.res.Target = fmt.Sprintf("process %d and its children", pid)
		w.res.Follow = "process tree (PPid links in /proc), filtered by memtrace"
		w.tree = newProcessTree(o.ProcRoot, pid)
	case o.Comm != "":
		w.res.Target = fmt.Sprintf("processes named %q", o.Comm)
		w.res.Follow = "command name, filtered in the kernel"
		cfg.Comm = o.Comm
	case o.Cgroup != "":
		id, err := cgroup.ID(o.Cgroup)
		if err != nil {
			return cfg, err
		}
		w.res.Target = fmt.Sprintf("cgroup %s", o.Cgroup)
		w.res.Follow = "cgroup id, filtered in the kernel"
		cfg.CgroupID = id
	}
	return cfg, nil
}

// loop receives events until the verdict can be given.
func (w *watch) loop(ctx context.Context, sess event.Source) string {
	var timeout <-chan time.Time
	if w.opts.Timeout > 0 {
		t := time.NewTimer(w.opts.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var settled <-chan time.Time
	// Once the command exited: when to count again what it left running.
	var leftNotified <-chan struct{}
	var leftTick <-chan time.Time
	stopWatching := make(chan struct{})
	defer close(stopWatching)
	commandDone := false
	for {
		select {
		case ev, ok := <-sess.Events():
			if !ok {
				return StopSignal
			}
			if w.handle(ev) && w.an.Decisive() {
				settle.Reset(w.opts.Settle)
				settled = settle.C
			}
		case err := <-w.exited:
			w.exited = nil
			commandDone = true
			w.commandExited(err)
			// The command may have started a daemon that is still
			// starting (pg_ctl without -w) or left short-lived jobs:
			// wait while anything of it runs and nothing decisive
			// was seen.
			if w.an.Decisive() {
				return StopCommandExited
			}
			// Watched before it is counted: no exit goes unnoticed.
			left := w.watchLeft(stopWatching)
			defer left.stop() // once: the command exits once
			leftNotified, leftTick = left.changed, left.ticker.C
			if !w.anythingLeft() {
				return StopCommandExited
			}
			w.opts.Logf("the command exited; waiting for what it started")
		case <-leftNotified:
			if w.allExited() {
				return StopCommandExited
			}
		case <-leftTick:
			if w.allExited() {
				return StopCommandExited
			}
		case <-settled:
			if commandDone {
				return StopCommandExited
			}
			return StopSettled
		case <-timeout:
			return StopTimeout
		case <-ctx.Done():
			return StopSignal
		}
	}
}

// handle filters, names and records one event; it reports whether the
// event was kept.
func (w *watch) handle(ev event.Event) bool {
	if ev.HugeFault != nil && int(ev.Pid) != w.self {
		return w.addFault(ev)
	}
	if ev.Hugetlb == nil || int(ev.Pid) == w.self {
		return false
	}
	if w.tree != nil && !w.tree.contains(int(ev.Pid)) {
		return false
	}
	c := w.an.Add(ev)
	if c == nil {
		return false
	}
	if c.Huge && !c.OK {
		st := ReadFailureState(w.opts.ProcRoot, w.opts.SysRoot, int(c.Pid))
		c.Cause = Explain(*c, st, w.res.DefaultPageSizeKB)
		w.cgroupCause(c)
	}
	if w.opts.OnCall != nil {
		w.opts.OnCall(*c)
	}
	return true
}

func (w *watch) cleanup() {
	if w.place != nil {
		if err := w.place.remove(); err != nil {
			w.res.Warnings = append(w.res.Warnings, err.Error())
		}
	}
	if w.subreaper {
		setSubreaper(false)
	}
}

func rejections(hooks []event.HookStatus) string {
	s := ""
	for _, h := range hooks {
		for _, r := range h.Rejected {
			s += fmt.Sprintf("%s: %s; ", r.Hook, r.Reason)
		}
	}
	if s == "" {
		return "no hook tried"
	}
	return s[:len(s)-2]
}
