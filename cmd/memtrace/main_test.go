package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{},
		{"nosuchcommand"},
		{"capture", "--nosuchflag"},
		{"capture", "--duration", "soon"},
		{"capture", "--signals", "alloc,bogus"},
		{"capture", "--alloc-hook", "kprobe-everything"},
		{"capture", "--comm", "a-name-longer-than-15"},
		{"capture", "extra-argument"},
		{"capture", "--cgroup", "/no/such/cgroup"},
		{"watch", "--interval", "1ms"},
		{"help", "nosuchcommand"},
	}
	for _, args := range cases {
		code, _, stderr := runCLI(args...)
		if code != exitUsage {
			t.Errorf("memtrace %v: exit %d, want %d", args, code, exitUsage)
		}
		if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
			t.Errorf("memtrace %v printed a stack trace:\n%s", args, stderr)
		}
		if len(args) > 0 && !strings.Contains(stderr, "Usage:") {
			t.Errorf("memtrace %v: no usage in:\n%s", args, stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI("--help")
	if code != 0 || !strings.Contains(out, "capture") || !strings.Contains(out, "watch") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("help", "capture")
	if code != 0 || !strings.Contains(out, "--duration") || !strings.Contains(out, "Examples:") {
		t.Errorf("help capture: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("capture", "-h")
	if code != 0 || !strings.Contains(out, "--max-events") {
		t.Errorf("capture -h: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI("--version")
	if code != 0 || !strings.HasPrefix(out, "memtrace ") {
		t.Errorf("--version: exit %d %q", code, out)
	}
}

// TestNotPrivileged: without root the error names the capabilities.
func TestNotPrivileged(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root: the unprivileged error cannot be seen")
	}
	code, _, stderr := runCLI("capture", "-d", "1s", "-o", filepath.Join(t.TempDir(), "c.json"))
	if code != exitFail || !strings.Contains(stderr, "CAP_BPF") || !strings.Contains(stderr, "CAP_PERFMON") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestCaptureInterruptedIsValidJSON sends SIGINT to a running capture
// (as Ctrl-C does) and checks the file is a complete, valid document.
func TestCaptureInterruptedIsValidJSON(t *testing.T) {
	privtest.RequireRoot(t)
	dir := t.TempDir()
	out, ready := filepath.Join(dir, "c.json"), filepath.Join(dir, "ready")
	done, stderr := startReady(t, ready, "capture", "--duration", "0", "-o", out, "--ready-file", ready)
	// The capture's signal handler is installed before it reports ready.
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("capture did not stop on SIGINT")
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := capture.Read(f)
	if err != nil {
		t.Fatalf("interrupted capture is not a valid document: %v", err)
	}
	if doc.StopReason != "signal" || doc.End.Before(doc.Start) {
		t.Errorf("stop_reason %q, start %v, end %v", doc.StopReason, doc.Start, doc.End)
	}
	b, _ := os.ReadFile(out)
	if !json.Valid(b) {
		t.Error("not valid JSON")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// startReady runs a memtrace command in the background and waits until it
// creates its --ready-file (every probe attached). It returns the channel
// of its exit status and its standard error.
func startReady(t *testing.T, ready string, args ...string) (<-chan int, *bytes.Buffer) {
	t.Helper()
	done := make(chan int, 1)
	stderr := &bytes.Buffer{}
	go func() { done <- run(args, io.Discard, stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return done, stderr
		}
		select {
		case code := <-done:
			t.Fatalf("memtrace %s exited with %d before it was ready: %s", args[0], code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("memtrace %s not ready within 30s", args[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
