package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/testing/privtest"
)

func TestServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--listen", "no-port"},
		{"serve", "--max-series", "-1"},
		{"serve", "--interval", "10ms"},
		{"serve", "--age-out", "-1s"},
		{"serve", "--signals", "nothing"},
		{"serve", "extra"},
	} {
		code, _, stderr := runCLI(args...)
		if code != exitUsage || !strings.Contains(stderr, "Usage:") {
			t.Errorf("memtrace %v: exit %d, stderr %q", args, code, stderr)
		}
	}
	code, out, _ := runCLI("help", "serve")
	if code != 0 || !strings.Contains(out, "--listen") || !strings.Contains(out, "127.0.0.1:9479") {
		t.Errorf("help serve: exit %d\n%s", code, out)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServeSIGTERM runs serve as the CLI does, scrapes it, refuses a POST,
// then sends SIGTERM (as Kubernetes does to stop a pod) and expects a
// clean exit 0.
func TestServeSIGTERM(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	addr := freeLoopbackAddr(t)
	done, stderr := startReady(t, ready, "serve", "--listen", addr, "--ready-file", ready)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"memtrace_probe_attached{", "memtrace_hugepage_pool_pages{", "process_resident_memory_bytes", "memtrace_build_info{version="} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, err = http.Post("http://"+addr+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %s, want 405", resp.Status)
	}
	// The signal handler is installed before serve reports ready.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("still serving after SIGTERM")
	}
}
