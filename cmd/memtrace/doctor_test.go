package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/command/doctor"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
	"github.com/memtrace/memtrace/pkg/kmsg"
)

// doctorTree is internal/command/doctor's copy of this machine's procfs and sysfs, so
// the command's output does not depend on the host running the tests.
const doctorTree = "../../internal/command/doctor/testdata/vm"

func doctorArgs(extra ...string) []string {
	return append([]string{"doctor", "--proc-root", doctorTree + "/proc", "--sys-root", doctorTree + "/sys"}, extra...)
}

func decodeReport(t *testing.T, out string) doctor.Report {
	t.Helper()
	var r doctor.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("doctor --json is not a report: %v\n%s", err, out)
	}
	return r
}

// TestDoctorSeedLog: the seed's lines, from a copied 2.6.32 log, decode as
// atomic requests, and atomic failures make the exit status 1.
func TestDoctorSeedLog(t *testing.T) {
	code, out, stderr := runCLI(doctorArgs("--json", "--kmsg-file", "../../pkg/kmsg/testdata/seed-000.log")...)
	if code != exitFail {
		t.Errorf("exit %d, want %d (atomic failures are a problem); stderr %q", code, exitFail, stderr)
	}
	r := decodeReport(t, out)
	if len(r.Failures) != 2 {
		t.Fatalf("failures %+v", r.Failures)
	}
	for _, g := range r.Failures {
		if g.Order != 1 || g.ModeHex != "0x20" || g.Decoded != "GFP_ATOMIC" || g.Class != "atomic" || g.CanSleep {
			t.Errorf("%s: order %d mode %s %q class %q", g.Comm, g.Order, g.ModeHex, g.Decoded, g.Class)
		}
	}
	if p := r.Failures[1].Path.String(); p != "softirq network receive: tcp_v4_rcv → sk_clone" {
		t.Errorf("path %q", p)
	}
}

func TestDoctorFailOn(t *testing.T) {
	log := "../../pkg/kmsg/testdata/6.18-host.dmesg" // a sleeping allocation: warn
	for _, c := range []struct {
		failOn string
		want   int
	}{{"", exitOK}, {"problem", exitOK}, {"warn", exitFail}, {"never", exitOK}} {
		args := doctorArgs("--kmsg-file", log)
		if c.failOn != "" {
			args = append(args, "--fail-on", c.failOn)
		}
		if code, _, stderr := runCLI(args...); code != c.want {
			t.Errorf("--fail-on %q: exit %d, want %d; stderr %q", c.failOn, code, c.want, stderr)
		}
	}
}

func TestDoctorUsage(t *testing.T) {
	for _, args := range [][]string{
		{"doctor", "extra"},
		{"doctor", "--kernel", "banana"},
		{"doctor", "--kernel", "1.2"},
		{"doctor", "--since", "-1h"},
		{"doctor", "--interval", "soon"},
		{"doctor", "--fail-on", "sometimes"},
		{"doctor", "--top", "-1"},
		{"doctor", "--measure", "-1s"},
		{"doctor", "--measure", "a minute"},
	} {
		code, _, stderr := runCLI(args...)
		if code != exitUsage || !strings.Contains(stderr, "Usage:") {
			t.Errorf("memtrace %v: exit %d, stderr %q", args, code, stderr)
		}
	}
	code, _, stderr := runCLI(doctorArgs("--kmsg-file", "/no/such/log")...)
	if code != exitFail || !strings.Contains(stderr, "/no/such/log") {
		t.Errorf("missing --kmsg-file: exit %d, stderr %q", code, stderr)
	}
	code, out, _ := runCLI("help", "doctor")
	if code != exitOK || !strings.Contains(out, "Exit status") || !strings.Contains(out, "--kmsg-file") {
		t.Errorf("help doctor: exit %d\n%s", code, out)
	}
}

// TestDoctorThisHost runs doctor on the machine itself: a complete report.
// Its speed is internal/command/doctor's BenchmarkThisHost; the elapsed time is only
// logged here (it took 3.6 s in an emulated VM).
func TestDoctorThisHost(t *testing.T) {
	if testing.Short() {
		t.Skip("reads this host's kernel log and every process")
	}
	start := time.Now()
	code, out, stderr := runCLI("doctor", "--json")
	took := time.Since(start)
	if code != exitOK && code != exitFail {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeReport(t, out)
	t.Logf("doctor on this host: %v, worst %v, %d failures groups, skipped %+v", took, r.Worst(), len(r.Failures), r.Skipped)
	if len(r.Findings) < 8 {
		t.Errorf("%d findings", len(r.Findings))
	}
	if os.Geteuid() == 0 && r.Log == nil {
		t.Errorf("root could not read the kernel log: skipped %+v", r.Skipped)
	}
}

// TestDoctorProvokedFailure is the end-to-end check: a real
// allocation failure the kernel reports through warn_alloc, a moment
// before, is in doctor's report with its task and decoded mode.
func TestDoctorProvokedFailure(t *testing.T) {
	privtest.RequireRoot(t)
	comm := fmt.Sprintf("mtdoc%d", os.Getpid()%100000)
	rep, err := provoke.WarnAllocFailure(provoke.WithComm(comm))
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("cannot provoke warn_alloc here: %v", err)
	}
	if err != nil {
		t.Fatalf("provoking: %v (report %+v)", err, rep)
	}
	t.Logf("kernel logged: %s", rep.Warning)

	code, out, stderr := runCLI("doctor", "--json", "--since", "2m")
	if code != exitOK && code != exitFail {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeReport(t, out)
	if r.Log == nil || !r.Log.Live {
		t.Fatalf("no live log read: %+v, skipped %+v", r.Log, r.Skipped)
	}
	var found *doctor.FailureGroup
	for i, g := range r.Failures {
		for _, c := range g.Comms {
			if c == rep.Comm {
				found = &r.Failures[i]
			}
		}
	}
	if found == nil {
		t.Fatalf("no failure of %s among %d groups", rep.Comm, len(r.Failures))
	}
	g := found
	if g.Kind != "vmalloc" || g.Example.PID != rep.Pid && !containsInt(rep.Tids, g.Example.PID) {
		t.Errorf("kind %s pid %d, want vmalloc from pid %d (threads %v)", g.Kind, g.Example.PID, rep.Pid, rep.Tids)
	}
	if !strings.Contains(g.Decoded, "GFP_KERNEL_ACCOUNT") || g.Class != "kernel" || !g.CanSleep {
		t.Errorf("mode %s decoded %q class %q (with %s)", g.ModeHex, g.Decoded, g.Class, g.DecodedWith)
	}
	if g.Example.ModeText != "" && g.Example.ModeText != g.Decoded {
		t.Errorf("decoded %q, the kernel printed %q", g.Decoded, g.Example.ModeText)
	}
	// provoke grows the fd table (or, where that does not fail, sets an
	// xattr): the path must name the system call and the allocation.
	if p := g.Path.String(); !strings.Contains(p, "system call") || !(strings.Contains(p, "alloc_fdtable") || strings.Contains(p, "fsetxattr")) {
		t.Errorf("path %q, want the system call of %s", p, rep.Syscall)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestDoctorEndlessInput: a device that never ends is read up to
// --kmsg-max, and the report says so.
func TestDoctorEndlessInput(t *testing.T) {
	code, out, stderr := runCLI(doctorArgs("--json", "--kmsg-file", "/dev/zero", "--kmsg-max", "1MiB")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeReport(t, out)
	if r.Log == nil || !r.Log.Truncated || r.Log.Bytes != 1<<20 || r.Log.MaxBytes != 1<<20 {
		t.Errorf("log %+v", r.Log)
	}
	for _, bad := range []string{"banana", "-1", "1Q", ""} {
		code, _, stderr := runCLI(doctorArgs("--kmsg-max", bad)...)
		if code != exitUsage || !strings.Contains(stderr, "--kmsg-max") || !strings.Contains(stderr, "Usage:") {
			t.Errorf("--kmsg-max %q: exit %d, stderr %q", bad, code, stderr)
		}
	}
	_, help, _ := runCLI("help", "doctor")
	if !strings.Contains(help, fmt.Sprintf("the %d most frequent groups", kmsg.MaxGroups)) {
		t.Errorf("help doctor does not state the bound of %d groups", kmsg.MaxGroups)
	}
}

// TestDoctorIntervalInterrupted is Ctrl-C during `doctor --interval 1h`:
// the command ends with a report whose rates are over the time measured,
// and says it was interrupted. The log comes through a FIFO, so the
// signal handler is installed (doctor waits on the FIFO) before the test
// sends SIGINT to its own process, as Ctrl-C would.
func TestDoctorIntervalInterrupted(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "kern.log")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan struct {
		code     int
		out, err string
	}, 1)
	go func() {
		code, out, stderr := runCLI(doctorArgs("--json", "--interval", "1h", "--kmsg-file", fifo)...)
		done <- struct {
			code     int
			out, err string
		}{code, out, stderr}
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := os.ReadFile("../../pkg/kmsg/testdata/seed-000.log")
	w.Write(seed)
	w.Close()
	// The interval starts a few milliseconds after the log is read.
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var res struct {
		code     int
		out, err string
	}
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("doctor --interval 1h did not stop on SIGINT")
	}
	if res.code != exitFail { // the seed's atomic failures
		t.Fatalf("exit %d: %s", res.code, res.err)
	}
	r := decodeReport(t, res.out)
	if r.Interval == nil || !r.Interval.Interrupted || r.Interval.Asked != time.Hour {
		t.Fatalf("interval %+v", r.Interval)
	}
	if r.Interval.Measured == 0 {
		t.Skip("the signal came before the interval began (a busy machine)")
	}
	var header string
	for _, f := range r.Findings {
		if f.ID == "pressure" {
			h := f.Tables[0].Header
			header = h[len(h)-1]
		}
	}
	if r.Interval.Measured >= time.Hour || !strings.HasSuffix(header, " (interrupted; --interval was 1h0m)") {
		t.Errorf("measured %v, rate column %q", r.Interval.Measured, header)
	}
}

// TestDoctorMeasure: `doctor --measure` on this host, while a child sends
// traffic over loopback, measures atomic demand and turns it into a
// recommended vm.min_free_kbytes with its reasoning.
func TestDoctorMeasure(t *testing.T) {
	privtest.RequireRoot(t)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			// The filter records nothing: only the traffic matters here.
			if _, err := provoke.LoopbackTraffic(32<<20, "order > 64", func() {}, provoke.WithComm("mt-measure")); err != nil {
				done <- err
				return
			}
		}
	}()
	code, out, stderr := runCLI("doctor", "--json", "--measure", "3s")
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("loopback traffic: %v", err)
	}
	if code != exitOK && code != exitFail {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeReport(t, out)
	m := r.Measured
	if m == nil || m.Demand.Readings < 10 || m.Demand.Total.Total() == 0 || m.Hook == "" {
		t.Fatalf("measurement %+v", m)
	}
	var f *doctor.Finding
	for i := range r.Findings {
		if r.Findings[i].ID == "atomic-demand" {
			f = &r.Findings[i]
		}
	}
	if f == nil {
		t.Fatal("no atomic-demand finding")
	}
	rec := ""
	for _, e := range f.Evidence {
		if e.Label == "recommended vm.min_free_kbytes" {
			rec = e.Value
		}
	}
	if rec == "" || len(f.Notes) < 4 {
		t.Errorf("no recommendation with reasoning: %+v", f)
	}
	t.Logf("measured %v on %s: total %+v, peak per %v %+v; %s: %s", m.Demand.Measured, m.Hook, m.Demand.Total, m.Demand.Interval,
		m.Demand.PerInterval.Total, f.Summary, rec)
	code, text, _ := runCLI("doctor", "--measure", "1s")
	if (code != exitOK && code != exitFail) || !strings.Contains(text, "Measured atomic demand") {
		t.Errorf("text report: exit %d\n%s", code, text)
	}
}
