package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Helpers for tests that run memtrace as a real process: to send it
// signals, give it closed or failing outputs, and see what it leaves on
// the host after it exits.

// buildMemtrace builds this command into the test's temporary directory,
// or returns $MEMTRACE_BIN: a memtrace built from the same tree, where no
// Go toolchain is (test/vm's guests, which run the test binary alone).
func buildMemtrace(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("MEMTRACE_BIN"); bin != "" {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "memtrace")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building memtrace: %v\n%s", err, out)
	}
	return bin
}

// mountNS is a private mount namespace in which no tracefs is mounted,
// held open by a sleeping process. memtrace runs in it with nsenter, so
// the test gets memtrace's own wait status (an exit code, or the signal
// that killed it), and its mounts can be read after memtrace has exited
// without racing the host's other users of tracefs.
type mountNS struct {
	pid int
}

func privateMountNS(t *testing.T) *mountNS {
	t.Helper()
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s(1) from util-linux for a private mount namespace", tool)
		}
	}
	const script = `for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
	while grep -q " $d " /proc/self/mountinfo; do umount "$d" || exit 3; done
done
echo ready
exec sleep 1000000`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("setting up a mount namespace without tracefs: %q", line)
	}
	ns := &mountNS{pid: cmd.Process.Pid}
	if m := ns.tracefsMounts(t); len(m) > 0 {
		t.Fatalf("setup: tracefs still mounted at %v", m)
	}
	return ns
}

// command runs bin in the namespace (nsenter execs it: same pid).
func (ns *mountNS) command(bin string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{fmt.Sprintf("--mount=/proc/%d/ns/mnt", ns.pid), "--", bin}, args...)...)
}

// tracefsMounts lists where tracefs is mounted in the namespace.
func (ns *mountNS) tracefsMounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mounts", ns.pid))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "tracefs" {
			dirs = append(dirs, f[1])
		}
	}
	return dirs
}

// proc is a started memtrace process.
type proc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
}

func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitReady waits for the ready file and returns the pid in it, which
// must be the process's own.
func (p *proc) waitReady(t *testing.T, ready string) int {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("memtrace exited (%v) before it was ready: %s", p.cmd.ProcessState, p.stderr.String())
		default:
		}
		b, err := os.ReadFile(ready)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid != p.cmd.Process.Pid {
			t.Fatalf("ready file holds %q, want pid %d", b, p.cmd.Process.Pid)
		}
		return pid
	}
	t.Fatal("memtrace not ready within 60s")
	return 0
}

// wait waits for the process to exit. bad, polled meanwhile, names a sign
// that it went wrong (a probe attached, a file overwritten): the process
// is then killed and the test fails. A process still running after two
// minutes is killed too: this is a guard against a hang, not a time limit
// the test measures.
func (p *proc) wait(t *testing.T, bad func() string) *os.ProcessState {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	guard := time.After(2 * time.Minute)
	for {
		select {
		case <-p.done:
			return p.cmd.ProcessState
		case <-tick.C:
			if bad == nil {
				continue
			}
			if msg := bad(); msg != "" {
				p.cmd.Process.Kill()
				<-p.done
				t.Fatalf("%s\nstderr: %s", msg, p.stderr.String())
			}
		case <-guard:
			p.cmd.Process.Kill()
			<-p.done
			t.Fatalf("memtrace still running after 2 minutes; killed\nstderr: %s", p.stderr.String())
		}
	}
}

// exitedWith fails unless the process exited by itself with code (not
// killed by a signal, which skips every cleanup).
func (p *proc) exitedWith(t *testing.T, st *os.ProcessState, code int) {
	t.Helper()
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("memtrace was killed by %v instead of exiting %d\nstderr: %s", ws.Signal(), code, p.stderr.String())
	}
	if st.ExitCode() != code {
		t.Fatalf("memtrace exited %d, want %d\nstderr: %s", st.ExitCode(), code, p.stderr.String())
	}
	if s := p.stderr.String(); strings.Contains(s, "goroutine ") || strings.Contains(s, "panic") {
		t.Fatalf("stack trace on stderr:\n%s", s)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
