package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
)

// tracer is one running `memtrace capture`.
type tracer struct {
	name, path, ready string
	flags             []string
	cmd               *exec.Cmd
	stderr            bytes.Buffer
	done              chan error
	startErr          error // did not get ready
	stopErr           error // did not stop cleanly
}

func startCapture(memtrace, out, name string, flags []string) (*tracer, error) {
	c := &tracer{
		name:  name,
		flags: flags,
		path:  filepath.Join(out, "capture-"+name+".json"),
		ready: filepath.Join(out, "ready-"+name),
		done:  make(chan error, 1),
	}
	os.Remove(c.ready)
	args := append([]string{"capture", "--duration", "0", "-o", c.path, "--ready-file", c.ready}, flags...)
	c.cmd = exec.Command(memtrace, args...)
	c.cmd.Stdout, c.cmd.Stderr = &c.stderr, &c.stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting memtrace capture (%s): %w", name, err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	return c, nil
}

// waitReady waits until every probe is attached (the ready file exists).
func (c *tracer) waitReady(timeout time.Duration) {
	start := time.Now()
	for time.Since(start) < timeout {
		if _, err := os.Stat(c.ready); err == nil {
			fmt.Printf("e2e: capture %s ready after %.1fs\n", c.name, time.Since(start).Seconds())
			return
		}
		select {
		case err := <-c.done:
			c.done <- err
			c.startErr = fmt.Errorf("memtrace capture exited before it was ready (%v): %s", err, c.stderr.String())
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.startErr = fmt.Errorf("memtrace capture not ready after %s: %s", timeout, c.stderr.String())
}

// stopAll sends SIGINT to every capture, as Ctrl-C does, and waits; one
// that does not stop in time is killed.
func stopAll(caps []*tracer, timeout time.Duration) {
	for _, c := range caps {
		c.cmd.Process.Signal(syscall.SIGINT)
	}
	deadline := time.After(timeout)
	for _, c := range caps {
		select {
		case err := <-c.done:
			if err != nil {
				c.stopErr = fmt.Errorf("memtrace capture exited with %v: %s", err, c.stderr.String())
			}
		case <-deadline:
			c.cmd.Process.Kill()
			<-c.done
			c.stopErr = fmt.Errorf("memtrace capture did not stop within %s of SIGINT (killed): %s", timeout, c.stderr.String())
		}
		os.Remove(c.ready)
	}
}

func (c *tracer) read() (*capture.Document, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return capture.Read(f)
}
