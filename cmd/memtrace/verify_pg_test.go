package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/command/verify"
	"github.com/memtrace/memtrace/internal/present/text"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// The real-database end-to-end test: PostgreSQL from the Debian packages
// (.ci/run installs `postgresql`), in a temporary data directory on a
// loopback port, started under `memtrace verify` with huge_pages=on and a
// pool big enough (verdict on huge pages, exit 0), then with huge_pages=try
// and an empty pool (verdict fell back, exit 1, the failed mmap and its
// replacement reported).

// pgServer is a PostgreSQL data directory owned by the postgres user.
type pgServer struct {
	bin, dir, data, log string
	port                int
}

func TestVerifyPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts PostgreSQL, loads BPF programs, changes the hugetlb pool")
	}
	privtest.RequireRoot(t)
	pg := newPGServer(t)

	t.Run("huge_pages=on", func(t *testing.T) {
		// shared_buffers 128MB maps 144 MiB: 72 pages of 2 MiB.
		privtest.ReserveHugePages(t, 2048, 100)
		res, code := pg.verifyStart(t, "on")
		if code != 0 || res.Verdict != verify.OnHugePages {
			t.Fatalf("exit %d, verdict %s (%s), want 0 and on_huge_pages", code, res.Verdict, res.Summary)
		}
		c := pg.sharedMemoryCall(t, res, true)
		if !c.OK || c.PageSize != 2<<20 || !strings.Contains(c.FlagNames, "MAP_HUGETLB") || c.Comm != "postgres" {
			t.Errorf("the huge mmap: %+v", c)
		}
		cf := confirmation(t, res, c.Seq)
		if !cf.Found || !cf.Hugetlb || cf.KernelPageSizeKB != 2048 {
			t.Errorf("the kernel's view: %+v", cf)
		}
	})

	t.Run("huge_pages=try", func(t *testing.T) {
		privtest.ReserveHugePages(t, 2048, 0)
		res, code := pg.verifyStart(t, "try")
		if code != 1 || res.Verdict != verify.FellBack {
			t.Fatalf("exit %d, verdict %s (%s), want 1 and fell_back", code, res.Verdict, res.Summary)
		}
		failed := pg.sharedMemoryCall(t, res, true)
		if failed.OK || failed.Errno != "ENOMEM" || failed.Cause == nil || failed.Cause.Kind != "pool_too_small" {
			t.Fatalf("the failed mmap: %+v, cause %+v", failed, failed.Cause)
		}
		if len(res.Fallbacks) != 1 || res.Fallbacks[0].Failed[0] != failed.Seq {
			t.Fatalf("fallbacks %+v", res.Fallbacks)
		}
		repl := res.Calls[res.Fallbacks[0].Replacement]
		if !repl.OK || repl.Huge || repl.Call != "mmap" || !repl.AfterHugeFailure || repl.Size*2 < failed.Size {
			t.Errorf("the replacement: %+v", repl)
		}
		want := fmt.Sprintf("fell back: %s requested with MAP_HUGETLB (2 MiB pages) failed with ENOMEM, then mapped with 4 KiB pages", text.Bytes(failed.Size, text.TrimZero))
		if res.Fallbacks[0].Summary != want {
			t.Errorf("summary %q\nwant     %q", res.Fallbacks[0].Summary, want)
		}
		cf := confirmation(t, res, repl.Seq)
		if !cf.Found || cf.Hugetlb || cf.KernelPageSizeKB != 4 {
			t.Errorf("the kernel's view of the replacement: %+v", cf)
		}
	})
}

func newPGServer(t *testing.T) *pgServer {
	t.Helper()
	bin := findPostgres()
	if bin == "" {
		missing(t, "PostgreSQL is not installed (make test installs it as root on Debian: make test-deps)")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		missing(t, "no postgres user (the postgresql package creates it)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "memtrace-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	pg := &pgServer{bin: bin, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "log"), port: freePort(t)}
	out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(bin, "initdb"),
		"-D", pg.data, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	return pg
}

// missing fails in CI, where .ci/run installs PostgreSQL, and skips on a
// developer's machine without it.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// findPostgres returns the newest /usr/lib/postgresql/N/bin (Debian's
// layout), or the directory of pg_ctl in PATH.
func findPostgres() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[len(dirs)-1])
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func pgVersion(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// verifyStart runs `memtrace verify --json -- runuser -u postgres -- pg_ctl
// start` in process and stops the server at the end of the test.
func (pg *pgServer) verifyStart(t *testing.T, hugePages string) (*verify.Result, int) {
	t.Helper()
	opts := fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c huge_pages=%s -c shared_buffers=128MB",
		pg.port, pg.dir, hugePages)
	t.Cleanup(func() { pg.stop(t) })
	code, out, errs := hpRun("verify", "--json", "--quiet", "--timeout", "60s", "--",
		"runuser", "-u", "postgres", "--", filepath.Join(pg.bin, "pg_ctl"), "-D", pg.data, "-l", pg.log, "-o", opts, "-w", "-t", "30", "start")
	var res verify.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		log, _ := os.ReadFile(pg.log)
		t.Fatalf("exit %d, no JSON result (%v)\nstderr: %s\nserver log: %s", code, err, errs, log)
	}
	for _, c := range res.Calls {
		t.Logf("call %d: %s[%d] %s %d %s ok=%v %s", c.Seq, c.Comm, c.Pid, c.Call, c.Size, c.FlagNames, c.OK, c.Errno)
	}
	t.Logf("exit %d, verdict %s: %s", code, res.Verdict, res.Summary)
	return &res, code
}

// stop stops the server and waits until its processes are gone, so that
// the pool can be restored.
func (pg *pgServer) stop(t *testing.T) {
	pidFile := filepath.Join(pg.data, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return // not running
	}
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	out, err := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(pg.bin, "pg_ctl"), "-D", pg.data, "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil && pid > 0 {
		t.Logf("pg_ctl stop: %v\n%s", err, out)
		syscall.Kill(pid, syscall.SIGQUIT)
	}
	for deadline := time.Now().Add(20 * time.Second); pid > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("PostgreSQL (pid %d) did not stop", pid)
	}
}

// sharedMemoryCall is PostgreSQL's main shared memory request: the
// largest mmap, asking for huge pages or not.
func (pg *pgServer) sharedMemoryCall(t *testing.T, res *verify.Result, huge bool) verify.Call {
	t.Helper()
	var best *verify.Call
	for i, c := range res.Calls {
		if c.Call == "mmap" && c.Huge == huge && (best == nil || c.Size > best.Size) {
			best = &res.Calls[i]
		}
	}
	if best == nil {
		t.Fatalf("no mmap (huge=%v) among %d calls", huge, len(res.Calls))
	}
	return *best
}

func confirmation(t *testing.T, res *verify.Result, seq int) verify.Confirmation {
	t.Helper()
	for _, c := range res.Confirmations {
		if c.Seq == seq {
			return c
		}
	}
	t.Fatalf("no confirmation of call %d: %+v", seq, res.Confirmations)
	return verify.Confirmation{}
}
