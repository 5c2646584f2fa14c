package provoke

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childEnv, when set, turns a binary importing this package into a provoke
// child (see init in worker.go); its value is the comm to take.
const childEnv = "MEMTRACE_PROVOKE_CHILD"

// request and reply are the child protocol: one JSON object per line.
type request struct {
	Op   string `json:"op"`
	Args any    `json:"args,omitempty"`
}

type reply struct {
	Err    string          `json:"err,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

type helloResult struct {
	Pid, Tid int
	Comm     string
}

// child is a re-exec of the running binary that makes requests on behalf of
// the caller from one worker thread with a known tid and comm.
type child struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	replies  chan reply
	stderr   *syncBuffer
	deadline time.Time
	helloResult
}

// startChild starts the child and waits for its hello. The deadline bounds
// every later call; past it the child is killed.
func startChild(comm string, deadline time.Time) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting child: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+comm)
	// Die with the parent rather than linger holding memory or a cgroup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, replies: make(chan reply, 1), stderr: &syncBuffer{}, deadline: deadline}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("starting child: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting child: %w", err)
	}
	go c.readReplies(stdout)
	if err := c.call("hello", nil, &c.helloResult); err != nil {
		c.stop()
		return nil, fmt.Errorf("starting child: %w", err)
	}
	return c, nil
}

func (c *child) readReplies(r io.Reader) {
	defer close(c.replies)
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rep reply
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			rep = reply{Err: fmt.Sprintf("decoding child reply %q: %v", sc.Text(), err)}
		}
		c.replies <- rep
	}
}

// call runs op in the child and decodes its result into result.
func (c *child) call(op string, args, result any) error {
	b, err := json.Marshal(request{Op: op, Args: args})
	if err != nil {
		return fmt.Errorf("encoding %s request: %w", op, err)
	}
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sending %s to child: %w%s", op, err, c.stderrTail())
	}
	timer := time.NewTimer(time.Until(c.deadline))
	defer timer.Stop()
	select {
	case rep, ok := <-c.replies:
		if !ok {
			return fmt.Errorf("child exited during %s%s", op, c.stderrTail())
		}
		if rep.Err != "" {
			return fmt.Errorf("child %s: %s", op, rep.Err)
		}
		if result != nil {
			if err := json.Unmarshal(rep.Result, result); err != nil {
				return fmt.Errorf("decoding %s result: %w", op, err)
			}
		}
		return nil
	case <-timer.C:
		where := threadWaits(c.Pid)
		c.kill()
		return fmt.Errorf("child timed out during %s (killed; its threads: %s)%s", op, where, c.stderrTail())
	}
}

// stop closes the child's stdin, which makes it release what it holds and
// exit, and waits for it; a child that does not exit in time is killed.
func (c *child) stop() error {
	if c == nil || c.cmd == nil {
		return nil
	}
	c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	wait := time.Until(c.deadline)
	if wait < 5*time.Second {
		wait = 5 * time.Second
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(wait):
		c.kill()
		err = <-done
		if err == nil {
			err = errors.New("killed")
		}
	}
	c.cmd = nil
	if err != nil {
		return fmt.Errorf("stopping child: %w%s", err, c.stderrTail())
	}
	return nil
}

func (c *child) kill() {
	if c.cmd != nil && c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
}

func (c *child) stderrTail() string {
	s := strings.TrimSpace(c.stderr.String())
	if s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return "; child stderr: " + s
}

// syncBuffer is a bytes.Buffer safe for exec's copying goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
