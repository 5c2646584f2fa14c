package loader_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// noTracefsEnv marks the child of TestClassicTracepointsWithoutTracefs.
const noTracefsEnv = "MEMTRACE_TEST_NO_TRACEFS"

// TestClassicTracepointsWithoutTracefs: where tracefs is not mounted when
// memtrace starts (this CI host at boot), memtrace mounts it and still
// gets the classic tracepoints for extfrag and huge-page requests. It once
// did not: the warn_alloc kprobe, tried first, falls back to tracefs where
// the kernel has no kprobe PMU, and cilium/ebpf looks for tracefs only
// once per process, so every tracepoint after it failed and the raw
// syscall hooks (run on every system call) were used instead.
//
// The check runs in a child in a private mount namespace with tracefs
// unmounted, so the host's mounts are untouched.
func TestClassicTracepointsWithoutTracefs(t *testing.T) {
	if os.Getenv(noTracefsEnv) == "1" {
		checkWithoutTracefs(t)
		return
	}
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) from util-linux for a private mount namespace")
	}
	const script = `for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
	while grep -q " $d " /proc/self/mountinfo; do umount "$d" || exit 3; done
done
exec "$0" -test.run '^TestClassicTracepointsWithoutTracefs$' -test.v -test.count 1`
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script, os.Args[0])
	cmd.Env = append(os.Environ(), noTracefsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child in a private mount namespace:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestClassicTracepointsWithoutTracefs") {
		t.Fatal("the child did not pass (skipped?)")
	}
}

func checkWithoutTracefs(t *testing.T) {
	if dir, ok := tracefsMounted(t); ok {
		t.Fatalf("setup: tracefs still mounted at %s", dir)
	}
	s, err := loader.Start(loader.DefaultConfig(), loader.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[event.Signal]string{
		event.SignalExtfrag: "tracepoint/kmem/mm_page_alloc_extfrag",
		event.SignalHugetlb: "tracepoint/syscalls/",
	}
	for _, h := range s.Hooks() {
		t.Logf("%s: %s (attached %v) rejected %+v companions %+v", h.Signal, h.Hook, h.Attached, h.Rejected, h.Companions)
		if w, ok := want[h.Signal]; ok && (!h.Attached || !strings.HasPrefix(h.Hook, w)) {
			t.Errorf("%s uses %s, want %s…", h.Signal, h.Hook, w)
		}
	}
}

func tracefsMounted(t *testing.T) (string, bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if _, post, ok := strings.Cut(sc.Text(), " - "); ok && strings.HasPrefix(post, "tracefs ") {
			return strings.Fields(sc.Text())[4], true
		}
	}
	return "", false
}
