package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

//go:embed peers/memtrace.bt
var bpftraceScript []byte

// bccProbes is bcc's trace tool doing what memtrace does. trace cannot
// pair a syscall's entry with its exit, so exits are filtered to errors,
// as a one-liner user would; -K adds the kernel stack like memtrace's.
var bccProbes = []string{
	`t:kmem:mm_page_alloc (args->pfn == -1) "order=%d gfp=%x mt=%d", args->order, args->gfp_flags, args->migratetype`,
	`t:kmem:mm_page_alloc_extfrag "alloc_order=%d fallback_order=%d alloc_mt=%d fallback_mt=%d change_ownership=%d", args->alloc_order, args->fallback_order, args->alloc_migratetype, args->fallback_migratetype, args->change_ownership`,
	`t:syscalls:sys_enter_shmget (args->shmflg & 04000) "key=%x size=%d flags=%x", args->key, args->size, args->shmflg`,
	`t:syscalls:sys_exit_shmget (args->ret < 0) "ret=%d", args->ret`,
	`t:syscalls:sys_enter_mmap (args->flags & 0x40000) "len=%d flags=%x", args->len, args->flags`,
	`t:syscalls:sys_exit_mmap (args->ret < 0) "ret=%d", args->ret`,
	`t:syscalls:sys_enter_shmat "shmid=%d", args->shmid`,
	`t:syscalls:sys_exit_shmat (args->ret < 0) "ret=%d", args->ret`,
}

// bpftraceProbes is the number of probes in peers/memtrace.bt.
const bpftraceProbes = 9

// tracer is one configuration of the comparison.
type tracer struct {
	name string
	// args returns the command line; ready is the file memtrace and the
	// floor create once attached.
	args func(e *env, ready string) []string
	// probes > 0: ready when this many perf events have a BPF program
	// attached (bpftrace, bcc); 0: ready when the ready file exists.
	probes int
	// goDump: a Go program, asked for a goroutine dump (SIGQUIT, into its
	// log) before it is killed, to show where it hung.
	goDump bool
}

var (
	tNone  = &tracer{name: "none"}
	tFloor = &tracer{name: "floor", goDump: true, args: func(e *env, ready string) []string {
		return []string{e.bin("floor"), "--ready-file", ready}
	}}
	tMemtrace = &tracer{name: "memtrace", goDump: true, args: func(e *env, ready string) []string {
		return e.memtraceArgs(ready)
	}}
	// tBaseline is an earlier memtrace build (-baseline), start-up only.
	tBaseline = &tracer{name: "memtrace-baseline", goDump: true, args: func(e *env, ready string) []string {
		return e.memtraceArgsOf(e.baseline, ready)
	}}
	tBpftrace = &tracer{name: "bpftrace", probes: bpftraceProbes, args: func(e *env, ready string) []string {
		return []string{"bpftrace", e.bpftraceScript}
	}}
	tBcc = &tracer{name: "bcc", probes: len(bccProbes), args: func(e *env, ready string) []string {
		return append([]string{"trace-bpfcc", "-K"}, bccProbes...)
	}}
	allTracers = []*tracer{tNone, tFloor, tMemtrace, tBpftrace, tBcc}

	// The one-liners of the baseline, for start-up only: the
	// allocation-failure filter alone, as people type it.
	tBpftrace1 = &tracer{name: "bpftrace-oneliner", probes: 1, args: func(e *env, ready string) []string {
		return []string{"bpftrace", "-e", `tracepoint:kmem:mm_page_alloc /args->pfn == -1/ { @[pid, comm, args->order] = count(); }`}
	}}
	tBcc1 = &tracer{name: "bcc-oneliner", probes: 1, args: func(e *env, ready string) []string {
		return []string{"trace-bpfcc", bccProbes[0]}
	}}
)

// running is a started tracer.
type running struct {
	t        *tracer
	cmd      *exec.Cmd
	log      string
	ready    time.Duration // from exec to attached
	hwmReady int64         // VmHWM at ready, KiB
	done     chan error

	stopped bool
	rss     int64
	err     error
	forced  string // how a stop had to be forced, "" if SIGINT sufficed
	// justStopped: this stop call did the stopping (report it once).
	justStopped bool
}

// startTracer starts t and waits until its probes are attached.
func (e *env) startTracer(ctx context.Context, t *tracer, extra ...string) (*running, error) {
	if t.args == nil {
		return &running{t: t}, nil
	}
	e.seq++
	ready := filepath.Join(e.work, fmt.Sprintf("ready-%d", e.seq))
	logPath := filepath.Join(e.work, fmt.Sprintf("%s-%d.log", t.name, e.seq))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating tracer log: %w", err)
	}
	defer logf.Close()
	argv := append(t.args(e, ready), extra...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if (t == tMemtrace || t == tBaseline) && e.watch || t == tMemtraceStall || t == tMemtraceStallStacks {
		cmd.Stdout = nil // /dev/null
		if e.tracerStdout != nil {
			cmd.Stdout = e.tracerStdout
		}
	}
	cmd.Env = append(os.Environ(), e.tracerEnv...)
	// Its own process group: a Ctrl-C of the harness reaches the harness
	// only, which then stops tracers in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r := &running{t: t, cmd: cmd, log: logPath, done: make(chan error, 1)}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", t.name, err)
	}
	e.live[cmd.Process.Pid] = r
	go func() { r.done <- cmd.Wait() }()
	pid := cmd.Process.Pid
	deadline := time.NewTimer(90 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if t.probes > 0 {
			if attachedPerfEvents(pid) >= t.probes {
				break
			}
		} else if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-r.done:
			delete(e.live, pid)
			return nil, fmt.Errorf("%s exited before it was ready (%v): %s", t.name, err, tail(logPath))
		case <-deadline.C:
			r.stop()
			return nil, fmt.Errorf("%s not ready after 90 s: %s", t.name, tail(logPath))
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	r.ready = time.Since(start)
	r.hwmReady = statusKB(pid, "VmHWM")
	return r, nil
}

func (r *running) pid() int {
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// stop interrupts the tracer as a user would (Ctrl-C) and waits for it;
// it returns the peak RSS of its whole life in KiB (from wait4).
func (r *running) stop() (int64, error) {
	if r.cmd == nil {
		return 0, nil
	}
	if !r.stopped {
		r.stopped = true
		r.rss, r.err = r.interrupt()
		r.justStopped = true
	}
	return r.rss, r.err
}

func (r *running) interrupt() (maxRSSKB int64, err error) {
	// bcc's trace swallows a KeyboardInterrupt raised inside its perf
	// buffer callback, and bpftrace may miss one while busy: repeat
	// SIGINT, then SIGTERM, then kill the group.
	steps := []struct {
		sig   syscall.Signal
		after time.Duration
	}{{syscall.SIGINT, 4 * time.Second}, {syscall.SIGINT, 4 * time.Second}, {syscall.SIGTERM, 10 * time.Second}}
	pid := r.cmd.Process.Pid
	done := false
	for i, s := range steps {
		_ = syscall.Kill(pid, s.sig)
		select {
		case err = <-r.done:
			done = true
		case <-time.After(s.after):
		}
		if done {
			if i > 0 {
				r.forced = fmt.Sprintf("needed %d signals", i+1)
			}
			break
		}
	}
	if !done && r.t.goDump {
		_ = syscall.Kill(pid, syscall.SIGQUIT)
		select {
		case err = <-r.done:
			done = true
			r.forced = "did not stop on SIGINT or SIGTERM: goroutine dump (SIGQUIT) in " + r.log
		case <-time.After(3 * time.Second):
		}
	}
	if !done {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		err = <-r.done
		r.forced = "killed"
	}
	if ru, ok := r.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSSKB = ru.Maxrss
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// bpftrace and trace exit non-zero on SIGINT, and a forced stop is
		// recorded, not fatal: the kernel frees what they loaded either way.
		err = nil
	}
	return maxRSSKB, err
}

// tail returns the last lines of a log for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return strings.Join(lines, " | ")
}
