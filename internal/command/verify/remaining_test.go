package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// What a command leaves behind, and interrupts: verify keeps watching until
// everything the command started has exited (and no longer), and an
// interrupt at any point kills the command and everything it started and
// removes the cgroup. Each case runs with the run's cgroup (this host has
// one) and as on a host without one (the process tree below memtrace as
// child subreaper).

// noTimeout is a --timeout no test waits out: a run that needs it has hung.
const noTimeout = 10 * time.Minute

// guard bounds a run that would otherwise hang until noTimeout: it ends by
// the context, so with stop reason "signal", which the tests reject.
const guard = 2 * time.Minute

func forEachFollow(t *testing.T, f func(t *testing.T)) {
	t.Run("cgroup", f)
	t.Run("process-tree", func(t *testing.T) {
		makePlacement = func(string, string) (*placement, error) {
			return nil, errors.New("no cgroup, as the test asks")
		}
		t.Cleanup(func() { makePlacement = newPlacement })
		f(t)
	})
}

// checkNoCgroupLeft fails if this process's verify cgroup is still there.
func checkNoCgroupLeft(t *testing.T) {
	t.Helper()
	if dirs := privtest.CgroupsNamed(t, fmt.Sprintf("memtrace-verify-%d", os.Getpid())); len(dirs) > 0 {
		t.Errorf("cgroup left behind: %v", dirs)
	}
}

// killAtCleanup kills, when the test ends, whatever a test command wrote
// to pidFile and may have left running (a failing run).
func killAtCleanup(t *testing.T, pidFile string) {
	t.Cleanup(func() {
		for _, pid := range privtest.ReadPids(t, pidFile) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// TestCommandLeavesShortLivedChildren: the command exits at once, leaving
// children that exit soon after. The watch ends when they have (not at
// --timeout, as it did: `sh -c 'sleep 0.2 & exit 0'` waited out the
// timeout, 200 children kept it until killed).
func TestCommandLeavesShortLivedChildren(t *testing.T) {
	requireLive(t)
	forEachFollow(t, func(t *testing.T) {
		for name, script := range map[string]string{
			"sleep-and-exit": "sleep 0.2 & exit 0",
			"200-children":   "i=0; while [ $i -lt 200 ]; do sleep 0.1 & i=$((i+1)); done; exit 0",
		} {
			t.Run(name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), guard)
				defer cancel()
				res, err := Run(ctx, Options{Start: probes, Command: []string{"sh", "-c", script}, Timeout: noTimeout, Settle: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if res.StopReason != StopCommandExited || res.Verdict != NothingSeen {
					t.Errorf("stopped: %s, verdict %s; want command_exited, nothing_seen", res.StopReason, res.Verdict)
				}
				if c := res.Command; c == nil || !c.Exited || c.ExitCode != 0 {
					t.Errorf("command %+v", res.Command)
				}
				checkNoCgroupLeft(t)
			})
		}
	})
}

// TestOrphanDecidesVerdict: the command exits, and the child it left then
// maps huge pages and exits. The verdict is the child's, and the watch
// ends when the child is gone rather than after --settle.
func TestOrphanDecidesVerdict(t *testing.T) {
	requireLive(t)
	privtest.ReserveHugePages(t, 2048, 4)
	forEachFollow(t, func(t *testing.T) {
		dir, err := os.MkdirTemp("", "memtrace-verify-orphan")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		spec := clientSpec{Size: 4 << 20, Start: filepath.Join(dir, "start"), Release: filepath.Join(dir, "release")}
		os.WriteFile(spec.Release, nil, 0o644) // exit right after the call
		b, _ := json.Marshal(spec)
		t.Setenv(clientEnv, string(b))
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		res, err := Run(ctx, Options{Start: probes,
			Command: []string{"sh", "-c", `"$0" -test.run='^$' & exit 0`, os.Args[0]},
			MinSize: 1 << 20, Timeout: noTimeout, Settle: noTimeout,
			Logf: func(format string, args ...any) {
				// The client asks for huge pages once its parent is gone.
				if strings.HasPrefix(format, "the command exited;") {
					os.WriteFile(spec.Start, nil, 0o644)
				}
			},
		})
		os.WriteFile(spec.Start, nil, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if res.StopReason != StopCommandExited || res.Verdict != OnHugePages {
			t.Errorf("stopped: %s, verdict %s (%s); want command_exited, on_huge_pages", res.StopReason, res.Verdict, res.Summary)
		}
		checkNoCgroupLeft(t)
	})
}

// TestInterruptBeforeStart: an interrupt while verify starts up (before
// the command is launched) launches nothing.
func TestInterruptBeforeStart(t *testing.T) {
	requireLive(t)
	forEachFollow(t, func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "pids")
		killAtCleanup(t, pidFile)
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		res, err := Run(ctx, Options{Start: probes,
			Command: []string{"sh", "-c", `echo $$ >> "$0"; exec sleep 1000`, pidFile},
			Timeout: noTimeout,
			OnReady: func([]event.HookStatus) { cancel() },
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Command != nil || res.StopReason != StopSignal {
			t.Errorf("stopped: %s, command %+v; want signal and no command", res.StopReason, res.Command)
		}
		// The command would have written its pid at once: give it
		// every chance to show it was started.
		time.Sleep(200 * time.Millisecond)
		if pids := privtest.ReadPids(t, pidFile); len(pids) > 0 {
			t.Errorf("the command was started (pid %v)", pids)
		}
		if !strings.Contains(strings.Join(res.Warnings, "\n"), "it was not run") {
			t.Errorf("warnings %q do not say the command was not run", res.Warnings)
		}
		checkNoCgroupLeft(t)
	})
}

// TestInterruptKillsTree: an interrupt once the command runs kills it and
// everything it started, a fork storm included, and removes the cgroup.
// Before, the processes were moved out of the cgroup and left running.
func TestInterruptKillsTree(t *testing.T) {
	requireLive(t)
	cases := []struct {
		name, script string
		// when is the progress message on which the interrupt comes,
		// once the script wrote want pids.
		when string
		want int
	}{
		{"just-started", `sleep 1000 & echo $! >> "$0"; echo $$ >> "$0"; wait`, "started ", 2},
		{"after-the-command-exited", `sleep 1000 & echo $! >> "$0"; exit 0`, "the command exited;", 1},
		{"fork-storm", `echo $$ >> "$0"; while [ ! -e "$0.stop" ]; do true & done`, "started ", 1},
		{"fork-storm-orphaned", `sh -c 'echo $$ >> "$0"; while [ ! -e "$0.stop" ]; do true & done' "$0" & exit 0`, "the command exited;", 1},
	}
	forEachFollow(t, func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				pidFile := filepath.Join(t.TempDir(), "pids")
				killAtCleanup(t, pidFile)
				t.Cleanup(func() { os.WriteFile(pidFile+".stop", nil, 0o644) })
				ctx, cancel := context.WithTimeout(context.Background(), guard)
				defer cancel()
				res, err := Run(ctx, Options{Start: probes,
					Command: []string{"sh", "-c", tc.script, pidFile},
					Timeout: noTimeout,
					Logf: func(format string, args ...any) {
						if strings.HasPrefix(format, tc.when) {
							waitPids(t, pidFile, tc.want)
							cancel()
						}
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				if res.StopReason != StopSignal {
					t.Errorf("stopped: %s, want signal", res.StopReason)
				}
				for _, pid := range privtest.ReadPids(t, pidFile) {
					if !privtest.Gone(pid) {
						t.Errorf("pid %d still runs", pid)
					}
				}
				if c := res.Command; c == nil || !c.Exited {
					t.Errorf("command %+v: its end is not recorded", res.Command)
				}
				if !strings.Contains(strings.Join(res.Warnings, "\n"), "were killed") {
					t.Errorf("warnings %q do not say the command was killed", res.Warnings)
				}
				checkNoCgroupLeft(t)
			})
		}
	})
}

// waitPids waits until the test command wrote n pids.
func waitPids(t *testing.T, path string, n int) {
	for deadline := time.Now().Add(guard); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(privtest.ReadPids(t, path)) >= n {
			return
		}
	}
	t.Errorf("the command did not write %d pids to %s", n, path)
}

// TestPlacementKill kills a process tree in a cgroup of each kind this
// host has: v2 (cgroup.kill) and the v1 memory hierarchy (SIGKILL one by
// one), as verify does on an interrupt.
func TestPlacementKill(t *testing.T) {
	privtest.RequireRoot(t)
	mounts, err := cgroupMounts("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	own, err := ownCgroups("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	homes := cgroupHomes(mounts, own)
	if len(homes) == 0 {
		t.Skip("no cgroup v2 or v1 memory hierarchy here")
	}
	for _, h := range homes {
		kind := map[bool]string{true: "v2", false: "v1-memory"}[h.v2]
		t.Run(kind, func(t *testing.T) {
			dir := filepath.Join(h.dir, fmt.Sprintf("memtrace-verify-%d", os.Getpid()))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			p := &placement{dir: dir, home: h.dir, v2: h.v2}
			t.Cleanup(func() {
				if err := p.remove(); err != nil {
					t.Error(err)
				}
				checkNoCgroupLeft(t)
			})
			pidFile := filepath.Join(t.TempDir(), "pids")
			killAtCleanup(t, pidFile)
			w := &watch{opts: Options{Command: []string{"sh", "-c", `sleep 1000 & echo $! >> "$0"; sleep 1000 & echo $! >> "$0"; wait`, pidFile}},
				res: &Result{}, place: p, self: os.Getpid()}
			w.opts.Logf = t.Logf
			exited, err := w.startCommand()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				syscall.Kill(w.res.Command.Pid, syscall.SIGKILL)
				<-exited
			})
			waitPids(t, pidFile, 2)
			if left, err := p.populated(); err != nil || !left {
				t.Fatalf("populated %v, %v: want true", left, err)
			}
			if err := p.kill(); err != nil {
				t.Fatal(err)
			}
			if left, err := p.populated(); err != nil || left {
				t.Errorf("populated %v, %v after the kill: want false", left, err)
			}
			for _, pid := range append(privtest.ReadPids(t, pidFile), w.res.Command.Pid) {
				if !privtest.Gone(pid) {
					t.Errorf("pid %d still runs", pid)
				}
			}
		})
	}
}
