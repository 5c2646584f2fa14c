package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// baseEnv is what a root login shell on Debian would have.
var baseEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"USER=root",
	"TMPDIR=/tmp",
	"TERM=dumb",
}

// runStep runs one step between begin and end markers, then sends its files.
func runStep(out *results, st proto.Step) {
	fmt.Fprintf(out, "%sbegin %s\n", proto.Marker, st.Name)
	start := time.Now()
	lw := &lineEnd{w: out, last: '\n'}
	code := execStep(lw, st)
	lw.finish()
	fmt.Fprintf(out, "%send %s exit=%d seconds=%.1f\n", proto.Marker, st.Name, code, time.Since(start).Seconds())
	for _, pat := range st.Files {
		paths, _ := filepath.Glob(pat)
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				fmt.Fprintf(out, "guest: reading %s: %v\n", p, err)
				continue
			}
			proto.WriteFile(out, strings.TrimPrefix(p, "/"), data)
		}
	}
}

// execStep runs the step's program in its own process group, output
// (stdout and stderr through one pipe, so their order is kept) to w, and
// returns its exit code, or -1 when it was killed at the timeout.
func execStep(w io.Writer, st proto.Step) int {
	if len(st.Args) == 0 {
		fmt.Fprintln(w, "guest: step has no command")
		return -1
	}
	cmd := exec.Command(st.Args[0], st.Args[1:]...)
	cmd.Dir = st.Dir
	cmd.Env = append(append([]string(nil), baseEnv...), st.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(w, "guest: creating a pipe: %v\n", err)
		return -1
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		fmt.Fprintf(w, "guest: starting %s: %v\n", st.Args[0], err)
		return -1
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(w, pr)
		close(copied)
	}()
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	var timedOut atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	err = cmd.Wait()
	timer.Stop()
	// A descendant outside the process group may still hold the pipe.
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
		pr.Close()
		<-copied
	}
	// Whatever the step left behind goes with it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var ee *exec.ExitError
	switch {
	case timedOut.Load():
		fmt.Fprintf(w, "guest: %s timed out after %s: killed\n", st.Name, timeout)
		return -1
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode()
	}
	fmt.Fprintf(w, "guest: %s: %v\n", st.Name, err)
	return -1
}

// lineEnd remembers the last byte written so that a marker that follows
// output without a final newline still starts its own line.
type lineEnd struct {
	w    io.Writer
	last byte
}

func (l *lineEnd) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.last = p[len(p)-1]
	}
	return l.w.Write(p)
}

func (l *lineEnd) finish() {
	if l.last != '\n' {
		l.w.Write([]byte("\n"))
	}
}
