package main

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// Signals to a real verify (this process, as the CLI runs it): whenever
// INT, TERM or HUP comes, the command and everything it started are
// killed, the cgroup memtrace-verify-PID is removed and the report is
// still written. HUP used to kill memtrace outright, leaving the cgroup
// with the command in it; INT and TERM left the command running.

// verifyGuard bounds a verify that does not stop on the signal.
const verifyGuard = 2 * time.Minute

var verifySignals = []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// TestVerifySignalKillsCommand sends each signal while the command (a
// shell and its background job) runs.
func TestVerifySignalKillsCommand(t *testing.T) {
	privtest.RequireRoot(t)
	for _, sig := range verifySignals {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "pids")
			v := startVerify(t, sig, pidFile, "--ready-file", filepath.Join(dir, "ready"), "--",
				"sh", "-c", `sleep 1000 & echo $! >> "$0"; echo $$ >> "$0"; wait`, pidFile)
			for deadline := time.Now().Add(verifyGuard); len(privtest.ReadPids(t, pidFile)) < 2; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the command did not start")
				}
			}
			v.signal(t)
			v.checkCleanedUp(t, pidFile)
		})
	}
}

// TestVerifySignalDuringStartup sends each signal as soon as the probes
// are attached (--ready-file), while the command is being started: it is
// either not started or killed, and nothing is left.
func TestVerifySignalDuringStartup(t *testing.T) {
	privtest.RequireRoot(t)
	for _, sig := range verifySignals {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			ready, pidFile := filepath.Join(dir, "ready"), filepath.Join(dir, "pids")
			v := startVerify(t, sig, pidFile, "--ready-file", ready, "--", "sh", "-c", `echo $$ >> "$0"; exec sleep 1000`, pidFile)
			for deadline := time.Now().Add(verifyGuard); ; time.Sleep(time.Millisecond) {
				if _, err := os.Stat(ready); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("verify did not attach its probes")
				}
			}
			v.signal(t)
			v.checkCleanedUp(t, pidFile)
		})
	}
}

// runningVerify is `memtrace verify` running in this process.
type runningVerify struct {
	sig            syscall.Signal
	done           chan int
	finished       bool
	stdout, stderr bytes.Buffer
}

// startVerify runs verify with args in the background. The test catches
// sig too, so that a verify that does not handle it fails the test rather
// than killing it; then the test kills what the command wrote to pidFile,
// and waits for verify to end and remove its cgroup.
func startVerify(t *testing.T, sig syscall.Signal, pidFile string, args ...string) *runningVerify {
	t.Helper()
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, sig)
	v := &runningVerify{sig: sig, done: make(chan int, 1)}
	t.Cleanup(func() {
		for _, pid := range privtest.ReadPids(t, pidFile) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if !v.finished {
			select {
			case <-v.done:
			case <-time.After(verifyGuard):
			}
		}
		signal.Stop(caught)
	})
	args = append([]string{"verify", "--quiet", "--timeout", "10m"}, args...)
	go func() { v.done <- run(args, &v.stdout, &v.stderr) }()
	return v
}

// signal sends the signal to this process, as kill(1) would to memtrace,
// and waits for verify to end.
func (v *runningVerify) signal(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), v.sig); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-v.done:
		v.finished = true
		// Nothing is mapped: NOTHING SEEN, exit 1.
		if code != exitFail {
			t.Errorf("exit %d, want %d: %s", code, exitFail, v.stderr.String())
		}
	case <-time.After(verifyGuard):
		t.Fatalf("verify did not stop on %v", v.sig)
	}
}

// checkCleanedUp checks the report and that nothing is left: no process
// the command wrote to pidFile, no cgroup.
func (v *runningVerify) checkCleanedUp(t *testing.T, pidFile string) {
	t.Helper()
	pids := privtest.ReadPids(t, pidFile)
	t.Logf("the command wrote pids %v", pids)
	out := v.stdout.String()
	for _, want := range []string{"stopped: signal", "Verdict: NOTHING SEEN"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if len(pids) > 0 && !strings.Contains(out, "were killed") {
		t.Errorf("the command ran (pids %v) but the report does not say it was killed:\n%s", pids, out)
	}
	for _, pid := range pids {
		if !privtest.Gone(pid) {
			t.Errorf("pid %d still runs", pid)
		}
	}
	if dirs := privtest.CgroupsNamed(t, fmt.Sprintf("memtrace-verify-%d", os.Getpid())); len(dirs) > 0 {
		t.Errorf("cgroup left behind: %v", dirs)
	}
}
