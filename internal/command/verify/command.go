package verify

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// startCommand starts the command inside the run's cgroup (or, without
// one, under memtrace as child subreaper) and returns a channel that
// receives its exit.
func (w *watch) startCommand() (<-chan error, error) {
	argv := w.opts.Command
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = w.opts.Stdin
	out := w.opts.Output
	if out == nil {
		out = os.Stderr
	}
	// Files, not writers: with an io.Writer exec would copy through a
	// pipe and Wait would wait for a daemonized child to close it.
	cmd.Stdout, cmd.Stderr = out, out
	if w.place != nil {
		if err := w.place.enter(); err != nil {
			return nil, fmt.Errorf("entering %s: %w", w.place.dir, err)
		}
	}
	startErr := cmd.Start()
	if w.place != nil {
		if err := w.place.leave(); err != nil {
			// Still inside: every later event of memtrace itself is
			// filtered by pid, but say so.
			w.res.Warnings = append(w.res.Warnings, fmt.Sprintf("leaving %s: %v", w.place.dir, err))
		}
	}
	if startErr != nil {
		return nil, fmt.Errorf("starting %s: %w", argv[0], startErr)
	}
	w.res.Command = &CommandResult{Argv: argv, Pid: cmd.Process.Pid}
	if w.place == nil {
		w.tree = newProcessTree(w.opts.ProcRoot, cmd.Process.Pid)
		if w.subreaper {
			// Orphans of the command are reparented to memtrace: they
			// are the command's too.
			w.tree.known[w.self] = true
		}
	}
	w.opts.Logf("started %s (pid %d)", argv[0], cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done, nil
}

// commandExited records how the command ended.
func (w *watch) commandExited(err error) {
	c := w.res.Command
	c.Exited = true
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		c.ExitCode = ee.ExitCode()
		c.Error = ee.Error()
	default:
		c.ExitCode = -1
		c.Error = err.Error()
	}
	w.opts.Logf("the command exited with status %d", c.ExitCode)
}

func setSubreaper(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(v), 0, 0, 0)
}
