package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// The SysV client: the test binary run again with clientEnv set makes the
// shmget requests of an Oracle-style database (SHM_HUGETLB, and on failure
// the same segment on base pages), attaches what it got, touches it, and
// waits for the test to release it.

const clientEnv = "MEMTRACE_TEST_SHM_CLIENT"

type clientSpec struct {
	Size     uint64 `json:"size"`
	PageLog  uint   `json:"page_log"` // SHM_HUGE_* bits; 0 = default size
	Fallback bool   `json:"fallback"` // retry without SHM_HUGETLB on failure
	UID      int    `json:"uid"`      // drop to this uid and gid (0: stay root)
	Memlock  uint64 `json:"memlock"`  // RLIMIT_MEMLOCK to set first (0: leave)
	Release  string `json:"release"`  // exit once this file exists
	Start    string `json:"start"`    // if set, wait for this file before shmget
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(clientEnv); spec != "" {
		os.Exit(runClient(spec))
	}
	os.Exit(m.Run())
}

func runClient(raw string) int {
	var s clientSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 3
	}
	if s.Memlock > 0 {
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: s.Memlock, Max: s.Memlock}); err != nil {
			fmt.Fprintln(os.Stderr, "client: setrlimit:", err)
			return 3
		}
	}
	if s.UID > 0 {
		// Groups first: after setuid the process may not change them.
		if err := syscall.Setgroups([]int{s.UID}); err != nil {
			fmt.Fprintln(os.Stderr, "client: setgroups:", err)
			return 3
		}
		if err := syscall.Setgid(s.UID); err != nil {
			fmt.Fprintln(os.Stderr, "client: setgid:", err)
			return 3
		}
		if err := syscall.Setuid(s.UID); err != nil {
			fmt.Fprintln(os.Stderr, "client: setuid:", err)
			return 3
		}
	}
	if s.Start != "" {
		waitFor(s.Start)
	}
	flags := unix.IPC_CREAT | 0o600 | shmHugetlb | int(s.PageLog)<<26
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, int(s.Size), flags)
	if err != nil && s.Fallback {
		id, err = unix.SysvShmGet(unix.IPC_PRIVATE, int(s.Size), unix.IPC_CREAT|0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "client: shmget:", err)
		waitFor(s.Release)
		return 0
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	// Removed at once: the segment lives while attached and goes when the
	// client exits, whatever happens to the test.
	unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client: shmat:", err)
		return 3
	}
	mem[0] = 1 // fault in one page
	waitFor(s.Release)
	unix.SysvShmDetach(mem)
	return 0
}

func waitFor(path string) {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
}

// runClientVerify starts the client under verify and releases it once the
// verdict is in.
func runClientVerify(t *testing.T, spec clientSpec) *Result {
	t.Helper()
	// Somewhere the client can see after dropping to another user
	// (t.TempDir is private to root).
	dir, err := os.MkdirTemp("", "memtrace-verify-client")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	spec.Release = filepath.Join(dir, "release")
	b, _ := json.Marshal(spec)
	t.Setenv(clientEnv, string(b))
	res, err := Run(context.Background(), Options{Start: probes,
		Command: []string{os.Args[0], "-test.run=^$"},
		MinSize: 1 << 20, Settle: 500 * time.Millisecond, Timeout: 30 * time.Second,
	})
	os.WriteFile(spec.Release, nil, 0o644)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	// The pool is restored at cleanup: the client's pages must be gone.
	if res.Command != nil {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat("/proc/" + strconv.Itoa(res.Command.Pid)); err != nil {
				break
			}
		}
	}
	t.Logf("verdict %s: %s", res.Verdict, res.Summary)
	for _, c := range res.Calls {
		t.Logf("call %d: pid %d %s %d %s ok=%v %s", c.Seq, c.Pid, c.Call, c.Size, c.FlagNames, c.OK, c.Errno)
	}
	return res
}

func requireLive(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: loads BPF programs and changes hugetlb pools")
	}
	privtest.RequireRoot(t)
}

// firstShmget returns the first shmget call of the client.
func firstShmget(t *testing.T, res *Result, huge bool) Call {
	t.Helper()
	for _, c := range res.Calls {
		if c.Call == "shmget" && c.Huge == huge && c.Pid == uint32(res.Command.Pid) {
			return c
		}
	}
	t.Fatalf("no shmget (huge=%v) from the client (pid %d) among %d calls", huge, res.Command.Pid, len(res.Calls))
	return Call{}
}

func TestSysVHugeSegment(t *testing.T) {
	requireLive(t)
	privtest.ReserveHugePages(t, 2048, 4)
	res := runClientVerify(t, clientSpec{Size: 4 << 20})
	c := firstShmget(t, res, true)
	if !c.OK || c.PageSize != 2<<20 || !strings.Contains(c.FlagNames, "SHM_HUGETLB") {
		t.Errorf("shmget %+v", c)
	}
	if res.Verdict != OnHugePages {
		t.Errorf("verdict %s (%s), want on_huge_pages", res.Verdict, res.Summary)
	}
	cf := confirmationOf(t, res, c.Seq)
	if !cf.Found || !cf.Hugetlb || cf.KernelPageSizeKB != 2048 || len(cf.Attachers) != 1 || cf.Attachers[0].Pid != res.Command.Pid {
		t.Errorf("kernel's view %+v", cf)
	}
}

func TestSysVPoolTooSmall(t *testing.T) {
	requireLive(t)
	privtest.ReserveHugePages(t, 2048, 1)
	res := runClientVerify(t, clientSpec{Size: 4 << 20, Fallback: true})
	c := firstShmget(t, res, true)
	if c.OK || c.Errno != "ENOMEM" || c.Cause == nil || c.Cause.Kind != "pool_too_small" || c.Cause.NeededPages != 2 {
		t.Fatalf("shmget %+v cause %+v", c, c.Cause)
	}
	if c.Cause.Pool == nil || c.Cause.Pool.Total != 1 || !strings.Contains(c.Cause.Text, "needed 2 pages of 2 MiB") {
		t.Errorf("cause %+v", c.Cause)
	}
	if res.Verdict != FellBack || len(res.Fallbacks) != 1 {
		t.Fatalf("verdict %s, fallbacks %+v", res.Verdict, res.Fallbacks)
	}
	want := "fell back: 4 MiB requested with SHM_HUGETLB (2 MiB pages) failed with ENOMEM, then created as a System V segment with 4 KiB pages"
	if res.Fallbacks[0].Summary != want {
		t.Errorf("summary %q", res.Fallbacks[0].Summary)
	}
	cf := confirmationOf(t, res, res.Fallbacks[0].Replacement)
	if !cf.Found || cf.Hugetlb || cf.KernelPageSizeKB != 4 {
		t.Errorf("kernel's view of the replacement %+v", cf)
	}
}

// SHM_HUGE_16GB names a page size no x86 kernel has a pool for.
func TestSysVNoPoolForSize(t *testing.T) {
	requireLive(t)
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-16777216kB"); err == nil {
		t.Skip("this kernel has a 16 GiB pool")
	}
	res := runClientVerify(t, clientSpec{Size: 4 << 20, PageLog: 34, Fallback: true})
	c := firstShmget(t, res, true)
	if c.OK || c.Errno != "EINVAL" || c.PageSize != 16<<30 || c.Cause == nil || c.Cause.Kind != "no_pool_for_size" {
		t.Fatalf("shmget %+v cause %+v", c, c.Cause)
	}
	if !strings.Contains(c.Cause.Text, "no pool of 16 GiB pages") || res.Verdict != FellBack {
		t.Errorf("cause %q, verdict %s", c.Cause.Text, res.Verdict)
	}
}

// A user outside vm.hugetlb_shm_group with a memlock limit below the
// segment may not create SHM_HUGETLB segments.
func TestSysVNotPermitted(t *testing.T) {
	requireLive(t)
	const nobody = 65534
	if g, _ := os.ReadFile("/proc/sys/vm/hugetlb_shm_group"); strings.TrimSpace(string(g)) == strconv.Itoa(nobody) {
		t.Skip("vm.hugetlb_shm_group is nobody's group on this host")
	}
	privtest.ReserveHugePages(t, 2048, 4)
	res := runClientVerify(t, clientSpec{Size: 4 << 20, UID: nobody, Memlock: 64 << 10, Fallback: true})
	c := firstShmget(t, res, true)
	if c.OK || c.Errno != "EPERM" || c.Cause == nil || c.Cause.Kind != "not_permitted" {
		t.Fatalf("shmget %+v cause %+v", c, c.Cause)
	}
	for _, want := range []string{"uid 65534", "not in vm.hugetlb_shm_group", "RLIMIT_MEMLOCK (64 KiB) is below the 4 MiB segment"} {
		if !strings.Contains(c.Cause.Text, want) {
			t.Errorf("cause %q lacks %q", c.Cause.Text, want)
		}
	}
	if res.Verdict != FellBack {
		t.Errorf("verdict %s", res.Verdict)
	}
}

func confirmationOf(t *testing.T, res *Result, seq int) Confirmation {
	t.Helper()
	for _, c := range res.Confirmations {
		if c.Seq == seq {
			return c
		}
	}
	t.Fatalf("no confirmation of call %d in %+v", seq, res.Confirmations)
	return Confirmation{}
}

// TestFollowRunningProcess follows a process someone else started, by pid
// (the process tree in user space, the kernel tracing every huge-page
// call) and by name (the kernel's comm filter).
func TestFollowRunningProcess(t *testing.T) {
	requireLive(t)
	privtest.ReserveHugePages(t, 2048, 4)
	for _, mode := range []string{"pid", "comm"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			spec := clientSpec{Size: 4 << 20, Start: filepath.Join(dir, "start"), Release: filepath.Join(dir, "release")}
			b, _ := json.Marshal(spec)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), clientEnv+"="+string(b))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				os.WriteFile(spec.Release, nil, 0o644)
				os.WriteFile(spec.Start, nil, 0o644)
				cmd.Wait()
			})
			opts := Options{Start: probes, MinSize: 1 << 20, Settle: 300 * time.Millisecond, Timeout: 30 * time.Second,
				OnReady: func([]event.HookStatus) { os.WriteFile(spec.Start, nil, 0o644) }}
			if mode == "pid" {
				opts.Pid = &cmd.Process.Pid
			} else {
				opts.Comm = filepath.Base(os.Args[0])
				if len(opts.Comm) > 15 {
					opts.Comm = opts.Comm[:15]
				}
			}
			res, err := Run(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != OnHugePages {
				t.Fatalf("verdict %s (%s), want on_huge_pages; calls %+v", res.Verdict, res.Summary, res.Calls)
			}
			for _, c := range res.Calls {
				if int(c.Pid) != cmd.Process.Pid {
					t.Errorf("call of another process followed: %+v", c)
				}
			}
		})
	}
}
