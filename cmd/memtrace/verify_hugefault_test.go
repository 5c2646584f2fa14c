package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/memtrace/memtrace/internal/command/verify"
	"github.com/memtrace/memtrace/internal/probe/tracefs"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// Huge pages missing at fault time: a database that mapped its shared
// memory and then dies of SIGBUS while touching it. verify --follow
// fails with the mapping and the cause; a hugetlb cgroup limit, not the
// pool, is named when it refused the pages.

func decodeVerify(t *testing.T, out string) verify.Result {
	t.Helper()
	var r verify.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("verify --json output: %v\n%s", err, out)
	}
	return r
}

// TestVerifyFollowSigbus: a command maps three 2 MiB pages with
// MAP_NORESERVE with one page in the pool and dies of SIGBUS at the
// second. verify exits 1 naming the pool; tracefs counts the same SIGBUS.
func TestVerifyFollowSigbus(t *testing.T) {
	privtest.RequireRoot(t)
	argv, err := provoke.SigbusCommand(3, false)
	if err != nil {
		t.Fatal(err)
	}
	restore, err := provoke.ReserveHugePages(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := restore(); err != nil {
			t.Error(err)
		}
	}()
	dir, unmount, err := tracefs.Mount()
	if err != nil {
		t.Fatal(err)
	}
	defer unmount()
	sigbus, err := tracefs.NewCounter(dir, "signal", "signal_generate", `sig == 7 && comm == "memtrace.test"`)
	if err != nil {
		t.Fatal(err)
	}
	defer sigbus.Close()
	code, out, stderr := runCLI(append([]string{"verify", "--json", "--min-size", "4M", "--follow", "1m", "--"}, argv...)...)
	n, err := sigbus.Count()
	if err != nil {
		t.Fatal(err)
	}
	r := decodeVerify(t, out)
	t.Logf("exit %d, verdict %s: %s; SIGBUS: verify %d, tracefs %d; stop %s", code, r.Verdict, r.Summary, len(r.Faults), n, r.StopReason)
	if code != 1 || r.Verdict != verify.HugePageFault || len(r.Faults) != 1 || n != 1 {
		t.Fatalf("exit %d, verdict %s, %d faults, tracefs %d SIGBUS\n%s\n%s", code, r.Verdict, len(r.Faults), n, out, stderr)
	}
	f := r.Faults[0]
	if f.Cause != "pool_empty" || f.Reservation != "noreserve" || f.Mapping.Size != 6<<20 || f.Mapping.PageSize != 2<<20 ||
		r.Command == nil || !r.Command.Exited || !strings.Contains(r.Command.Error, "bus error") {
		t.Errorf("fault %+v, command %+v", f, r.Command)
	}
}

// runVerifyIn runs the built memtrace's verify in cgroup dir (clone into
// it), with argv as the followed command.
func runVerifyIn(t *testing.T, bin, dir string, argv []string) (int, verify.Result, string) {
	t.Helper()
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command(bin, append([]string{"verify", "--json", "--min-size", "4M", "--follow", "1m", "--"}, argv...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	out, err := cmd.Output()
	code := 0
	if e, ok := err.(*exec.ExitError); ok {
		code = e.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, decodeVerify(t, string(out)), stderr.String()
}

// TestVerifyHugetlbCgroupLimits runs verify inside a cgroup with hugetlb
// limits below the request while the pool has pages for it: the fault
// limit (hugetlb.2MB.max) lets the mapping reserve and kills the process
// with SIGBUS at the second page; the reservation limit (.rsvd.max)
// makes mmap fail. Each time verify names the limit, not the pool.
func TestVerifyHugetlbCgroupLimits(t *testing.T) {
	privtest.RequireRoot(t)
	bin := buildMemtrace(t)
	restore, err := provoke.ReserveHugePages(0, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := restore(); err != nil {
			t.Error(err)
		}
	}()
	for _, c := range []struct {
		name, file string
		want       string
	}{
		{"fault", "hugetlb.2MB.max", "hugetlb_cgroup_limit"},
		{"reservation", "hugetlb.2MB.rsvd.max", "hugetlb_cgroup_rsvd_limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("memtrace-test-hugetlb-%d", os.Getpid())
			dir, remove, err := provoke.HugetlbCgroup(name, [][2]string{{c.file, "2097152"}})
			if err != nil {
				t.Skip(err)
			}
			defer func() {
				if err := remove(); err != nil {
					t.Error(err)
				}
			}()
			argv, err := provoke.SigbusCommand(3, true)
			if err != nil {
				t.Fatal(err)
			}
			code, r, stderr := runVerifyIn(t, bin, dir, argv)
			t.Logf("exit %d, verdict %s: %s", code, r.Verdict, r.Summary)
			if code != 1 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			var named string
			switch c.name {
			case "fault":
				if r.Verdict != verify.HugePageFault || len(r.Faults) != 1 {
					t.Fatalf("verdict %s, faults %+v\n%s", r.Verdict, r.Faults, stderr)
				}
				f := r.Faults[0]
				named = f.Cause + ": " + f.Explanation
				if f.Reservation != "reserved" || f.Cgroup == nil || f.Cgroup.Path != "/"+name {
					t.Errorf("fault %+v, cgroup %+v", f, f.Cgroup)
				}
			case "reservation":
				if r.Verdict != verify.HugeRequestFailed || len(r.Calls) == 0 || r.Calls[0].Cause == nil {
					t.Fatalf("verdict %s, calls %+v\n%s", r.Verdict, r.Calls, stderr)
				}
				named = r.Calls[0].Cause.Kind + ": " + r.Calls[0].Cause.Text
			}
			t.Logf("cause: %s", named)
			if !strings.HasPrefix(named, c.want+": ") || !strings.Contains(named, "/"+name) || !strings.Contains(named, c.file) {
				t.Errorf("cause %q, want %s naming /%s and %s", named, c.want, name, c.file)
			}
			found := false
			for _, l := range r.HugetlbLimits {
				found = found || l.Path == "/"+name
			}
			if !found {
				t.Errorf("limits %+v do not list /%s", r.HugetlbLimits, name)
			}
		})
	}
}

// TestVerifyHugetlbCgroupV1Limit runs verify inside a cgroup v1 hugetlb
// hierarchy (mounted for the test where none is, which takes the
// controller from cgroup v2 until it is unmounted) whose
// hugetlb.2MB.limit_in_bytes allows one of the three pages a reserved
// mapping touches, while the pool has four: the mapping succeeds, the
// second page's fault cannot be charged, SIGBUS. verify names the v1
// limit with its usage; tracefs counts the same SIGBUS.
func TestVerifyHugetlbCgroupV1Limit(t *testing.T) {
	privtest.RequireRoot(t)
	bin := buildMemtrace(t)
	restore, err := provoke.ReserveHugePages(0, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := restore(); err != nil {
			t.Error(err)
		}
	}()
	name := fmt.Sprintf("memtrace-test-hugetlb-v1-%d", os.Getpid())
	root, dir, remove, err := provoke.HugetlbCgroupV1(name, [][2]string{{"hugetlb.2MB.limit_in_bytes", "2097152"}})
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := remove(); err != nil {
			t.Error(err)
		}
	}()
	t.Logf("v1 hugetlb hierarchy at %s", root)
	argv, err := provoke.SigbusCommand(3, true)
	if err != nil {
		t.Fatal(err)
	}
	tdir, unmount, err := tracefs.Mount()
	if err != nil {
		t.Fatal(err)
	}
	defer unmount()
	// The command's name: provoke's children in other packages' tests,
	// which may run meanwhile, have names of their own.
	sigbus, err := tracefs.NewCounter(tdir, "signal", "signal_generate", `sig == 7 && comm == "memtrace.test"`)
	if err != nil {
		t.Fatal(err)
	}
	defer sigbus.Close()
	// v1 has no clone into a cgroup: a shell joins it, then becomes
	// memtrace, whose command inherits it.
	cmd := exec.Command("sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir, bin,
		"verify", "--json", "--min-size", "4M", "--follow", "1m", "--"}, argv...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if e, ok := err.(*exec.ExitError); ok {
		code = e.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	r := decodeVerify(t, string(out))
	n, err := sigbus.Count()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exit %d, verdict %s: %s; SIGBUS: verify %d, tracefs %d", code, r.Verdict, r.Summary, len(r.Faults), n)
	if code != 1 || r.Verdict != verify.HugePageFault || len(r.Faults) != 1 || n != 1 {
		t.Fatalf("exit %d, verdict %s, %d faults, tracefs %d SIGBUS\n%s\n%s", code, r.Verdict, len(r.Faults), n, out, stderr.String())
	}
	f := r.Faults[0]
	named := f.Cause + ": " + f.Explanation
	t.Logf("cause: %s", named)
	if f.Reservation != "reserved" || f.Cgroup == nil || f.Cgroup.Path != "/"+name ||
		!strings.HasPrefix(named, "hugetlb_cgroup_limit: ") || !strings.Contains(named, "/"+name) || !strings.Contains(named, "hugetlb.2MB.limit_in_bytes") {
		t.Errorf("fault %+v, cgroup %+v", f, f.Cgroup)
	}
	found := false
	for _, l := range r.HugetlbLimits {
		found = found || l.Path == "/"+name
	}
	if !found {
		t.Errorf("limits %+v do not list /%s", r.HugetlbLimits, name)
	}
}
