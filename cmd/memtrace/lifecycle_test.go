package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// TestCaptureStopSignals: INT (Ctrl-C), TERM (kill, systemd) and HUP (a
// closed terminal or ssh session) each end a capture with its complete
// document written, and the tracefs memtrace mounted unmounted. HUP once
// killed the process on the spot: no document, tracefs left mounted.
func TestCaptureStopSignals(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	bin := buildMemtrace(t)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			ns := privateMountNS(t)
			dir := t.TempDir()
			out, ready := filepath.Join(dir, "c.json"), filepath.Join(dir, "ready")
			p := startProc(t, ns.command(bin, "capture", "--duration", "0", "-o", out, "--ready-file", ready))
			pid := p.waitReady(t, ready)
			if len(ns.tracefsMounts(t)) == 0 {
				t.Fatal("setup: memtrace did not mount tracefs, so its unmount cannot be checked")
			}
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatal(err)
			}
			p.exitedWith(t, p.wait(t, nil), 0)
			f, err := os.Open(out)
			if err != nil {
				t.Fatalf("no document after %v: %v\nstderr: %s", sig, err, p.stderr.String())
			}
			defer f.Close()
			doc, err := capture.Read(f)
			if err != nil {
				t.Fatalf("document after %v: %v", sig, err)
			}
			if doc.StopReason != "signal" {
				t.Errorf("stop_reason %q, want signal", doc.StopReason)
			}
			if m := ns.tracefsMounts(t); len(m) > 0 {
				t.Errorf("tracefs left mounted at %v", m)
			}
			if exists(ready) {
				t.Error("ready file left behind")
			}
		})
	}
}

// TestWatchReaderClosesEarly: `memtrace watch --json | head` once died of
// SIGPIPE at the first write after head exited, leaving tracefs mounted.
// Now the broken pipe ends the run: probes detached, tracefs unmounted,
// exit 141 (128+SIGPIPE, as a shell reports for any program stopped by
// its reader) without a message.
func TestWatchReaderClosesEarly(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	bin := buildMemtrace(t)
	ns := privateMountNS(t)
	ready := filepath.Join(t.TempDir(), "ready")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.command(bin, "watch", "--json", "--interval", "100ms", "--ready-file", ready)
	cmd.Stdout = w
	p := startProc(t, cmd)
	w.Close()
	p.waitReady(t, ready)
	if len(ns.tracefsMounts(t)) == 0 {
		t.Fatal("setup: memtrace did not mount tracefs, so its unmount cannot be checked")
	}
	// Any line: the first may be an event of another test running beside
	// this one, before the first interval's summary.
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, `{"kind":`) {
		t.Fatalf("first line %q: %v", line, err)
	}
	r.Close()
	st := p.wait(t, nil)
	p.exitedWith(t, st, exitBrokenPipe)
	if s := p.stderr.String(); strings.Contains(s, "memtrace watch:") {
		t.Errorf("a reader that stops reading is no error, but stderr says:\n%s", s)
	}
	if m := ns.tracefsMounts(t); len(m) > 0 {
		t.Errorf("tracefs left mounted at %v", m)
	}
	if exists(ready) {
		t.Error("ready file left behind")
	}
}

// TestWatchFailingOutput: `memtrace watch > /dev/full` once ran silently
// until killed. A failing write ends it with one line and exit 1, after
// cleanup.
func TestWatchFailingOutput(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	bin := buildMemtrace(t)
	for _, mode := range []string{"text", "json"} {
		t.Run(mode, func(t *testing.T) {
			ns := privateMountNS(t)
			full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
			if err != nil {
				t.Skipf("no /dev/full: %v", err)
			}
			defer full.Close()
			args := []string{"watch", "--interval", "100ms", "--ready-file", filepath.Join(t.TempDir(), "ready")}
			if mode == "json" {
				args = append(args, "--json")
			}
			cmd := ns.command(bin, args...)
			cmd.Stdout = full
			p := startProc(t, cmd)
			p.exitedWith(t, p.wait(t, nil), exitFail)
			lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "memtrace watch: ") || !strings.Contains(last, "no space left on device") {
				t.Errorf("last line of stderr %q, want the write error", last)
			}
			if m := ns.tracefsMounts(t); len(m) > 0 {
				t.Errorf("tracefs left mounted at %v", m)
			}
		})
	}
}
