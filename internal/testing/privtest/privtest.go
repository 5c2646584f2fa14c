// Package privtest holds helpers for tests that load BPF programs and
// provoke real kernel events. They skip, with the reason, when the test
// cannot run here (not root); they never skip on a kernel that should have
// had the feature: a missing hook there is a failure.
package privtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// RequireRoot skips the test unless it runs as root, which loading BPF
// programs, mounting tracefs, creating cgroups and sizing hugepage pools
// need. -short also skips privileged tests.
func RequireRoot(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("privileged end-to-end test skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs (CAP_BPF, CAP_PERFMON) and provokes kernel events (cgroups, hugepage pools)")
	}
}

// RequireBTFKernel fails the test when the kernel has no BTF: every
// kernel memtrace supports has it, so its absence is not a reason to skip.
func RequireBTFKernel(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Fatalf("kernel BTF missing (/sys/kernel/btf/vmlinux): memtrace's CO-RE programs cannot load: %v", err)
	}
}

// RequireAttached fails unless every signal in want is attached.
func RequireAttached(t testing.TB, hooks []event.HookStatus, want ...event.Signal) {
	t.Helper()
	for _, sig := range want {
		found := false
		for _, h := range hooks {
			if h.Signal == sig {
				found = true
				if !h.Attached {
					t.Fatalf("signal %s has no hook on this kernel: %+v", sig, h.Rejected)
				}
			}
		}
		if !found {
			t.Fatalf("signal %s was not requested", sig)
		}
	}
}

// ReserveHugePages sizes the pool of sizeKB pages to n for the rest of the
// test and restores it afterwards, holding provoke's cross-process pool
// lock meanwhile (go test runs packages in parallel, and they all share
// the host's pools). n = 0 keeps the pool empty, for requests that must
// fail. It fails the test when the kernel cannot provide n usable pages.
func ReserveHugePages(t testing.TB, sizeKB uint64, n int) {
	t.Helper()
	RequireRoot(t)
	restore, err := provoke.ReserveHugePages(sizeKB, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Errorf("restoring the %d kB pool: %v", sizeKB, err)
		}
	})
	dir := fmt.Sprintf("/sys/kernel/mm/hugepages/hugepages-%dkB", sizeKB)
	free, resv := readInt(t, dir+"/free_hugepages"), readInt(t, dir+"/resv_hugepages")
	if free-resv < n {
		t.Fatalf("the %d kB pool has %d pages but only %d free and unreserved: something else holds huge pages", sizeKB, n, free-resv)
	}
}

func readInt(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return v
}
