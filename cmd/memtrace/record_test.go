package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/command/record"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// incidentFiles reads the complete incident files of dir (stop reason
// other than "recording"), by name.
func incidentFiles(t *testing.T, dir string, complete bool) map[string]*capture.Document {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*capture.Document{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "incident-") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := capture.Read(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s is not a whole document: %v", e.Name(), err)
		}
		if !complete || doc.StopReason != record.StopRecording {
			out[e.Name()] = doc
		}
	}
	return out
}

// waitIncident waits for a complete incident file in dir.
func waitIncident(t *testing.T, p *proc, dir string) (string, *capture.Document) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("memtrace exited (%v): %s", p.cmd.ProcessState, p.stderr.String())
		default:
		}
		for name, doc := range incidentFiles(t, dir, true) {
			return name, doc
		}
	}
	t.Fatal("no complete incident file within 2 minutes")
	return "", nil
}

// TestRecordBurstThenReport is the new user's path: `memtrace record`
// runs, a real provoked failure burst leaves an incident file, `memtrace
// report` draws it and writes its failing stacks for pprof, whose total
// is the file's count. SIGTERM then ends the recorder with everything
// removed.
func TestRecordBurstThenReport(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	const comm = "mt-recreport"
	bin := buildMemtrace(t)
	ns := privateMountNS(t)
	dir := filepath.Join(t.TempDir(), "incidents") // created by memtrace
	ready := filepath.Join(t.TempDir(), "ready")
	p := startProc(t, ns.command(bin, "record", "--dir", dir, "--comm", comm, "--burst", "10/2s", "--quiet", "0",
		"--after", "2s", "--ready-file", ready))
	pid := p.waitReady(t, ready)
	rep, err := provoke.AllocFailures(20, provoke.WithComm(comm))
	if err != nil {
		t.Fatal(err)
	}
	name, doc := waitIncident(t, p, dir)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.exitedWith(t, p.wait(t, nil), 0)
	if m := ns.tracefsMounts(t); len(m) > 0 {
		t.Errorf("tracefs left mounted at %v", m)
	}
	var count uint64
	for _, a := range doc.AllocFailures {
		count += a.Count
	}
	if !strings.Contains(name, "failure_burst") || count != rep.Events {
		t.Fatalf("%s counts %d failures, tracefs saw %d", name, count, rep.Events)
	}

	html, prof := filepath.Join(t.TempDir(), "report.html"), filepath.Join(t.TempDir(), "f.pb.gz")
	if out, err := exec.Command(bin, "report", filepath.Join(dir, name), "-o", html, "--pprof", prof).CombinedOutput(); err != nil {
		t.Fatalf("memtrace report: %v\n%s", err, out)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for _, ev := range doc.Events {
		if ev.Kind == event.KindAllocFailure {
			events++
		}
	}
	if n := strings.Count(string(page), `<rect class="mark failure"`); n != events {
		t.Errorf("the report draws %d failure marks, the incident has %d failure events", n, events)
	}
	if !strings.Contains(string(page), `class="frame" data-count="`+strconv.FormatUint(count, 10)+`"`) {
		t.Errorf("no flame-graph root counting %d failures", count)
	}
	checkPprofTotal(t, prof, count)
}

// checkPprofTotal opens the profile with `go tool pprof -top` and checks
// its total. Where no Go toolchain is installed (the test/vm guests run
// this binary without one) it reads the profile with the library pprof
// itself is built on.
func checkPprofTotal(t *testing.T, prof string, count uint64) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if _, err := os.Stat(goBin); err != nil {
		f, err := os.Open(prof)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p, err := profile.Parse(f)
		if err != nil {
			t.Fatalf("parsing %s: %v", prof, err)
		}
		var total int64
		for _, s := range p.Sample {
			total += s.Value[0]
		}
		if uint64(total) != count {
			t.Errorf("the profile totals %d, the incident counts %d", total, count)
		}
		return
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-top", prof).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`of (\d+) total`).FindSubmatch(out)
	if m == nil || string(m[1]) != strconv.FormatUint(count, 10) {
		t.Errorf("go tool pprof -top total %q, the incident counts %d:\n%s", m, count, out)
	}
}
