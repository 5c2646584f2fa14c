package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/memtrace/memtrace/internal/command/record"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestServeRecordDir: `serve --record-dir` runs the recorder on serve's
// probes (one DaemonSet for both): a failed huge-page request leaves an
// incident file, and SIGTERM ends both with exit 0.
func TestServeRecordDir(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	const comm = "mt-serverec"
	bin := buildMemtrace(t)
	ns := privateMountNS(t)
	dir := filepath.Join(t.TempDir(), "incidents")
	ready := filepath.Join(t.TempDir(), "ready")
	p := startProc(t, ns.command(bin, "serve", "--listen", "127.0.0.1:0", "--record-dir", dir, "--comm", comm, "--ready-file", ready))
	pid := p.waitReady(t, ready)
	privtest.ReserveHugePages(t, 2048, 0) // an empty pool: the request fails
	if _, err := provoke.Huge(provoke.HugeRequest{Op: provoke.ShmGet, Pages: 2}, provoke.WithComm(comm)); err != nil {
		t.Fatal(err)
	}
	name, doc := waitIncident(t, p, dir)
	syscall.Kill(pid, syscall.SIGTERM)
	p.exitedWith(t, p.wait(t, nil), 0)
	inc, err := record.ReadIncident(doc)
	if err != nil || inc == nil {
		t.Fatalf("%s: incident section %v, %v", name, inc, err)
	}
	if inc.Trigger.Kind != record.KindHugeFailure || inc.Trigger.Comm != comm || !strings.Contains(inc.Trigger.Reason, "shmget") {
		t.Errorf("trigger %+v, want the failed shmget of %s", inc.Trigger, comm)
	}
	if len(doc.Hooks) < 5 {
		t.Errorf("hooks %v: serve --record-dir traces every signal unless --signals says otherwise", doc.Hooks)
	}
}
