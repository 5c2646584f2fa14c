package loader

import (
	"fmt"
	"os"
	"testing"

	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/testing/privtest"
)

// TestStartTakesPageblockOrderFromTracefs: where Start mounts tracefs
// (the default signals use classic tracepoints), the pageblock order comes
// from the extfrag tracepoint's format, and this process's later readers
// of /proc reuse it, instead of /proc/pagetypeinfo, which the kernel
// generates whole for its first line with interrupts off (~19 ms of one
// CPU per start on this 24 GiB host). The order must be the one
// pagetypeinfo prints.
func TestStartTakesPageblockOrderFromTracefs(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	s, err := Start(DefaultConfig(), Naming{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.tracefsDir == "" {
		t.Skipf("tracefs unavailable: %v", s.tracefsErr)
	}
	g, err := sysstate.ReadGeometry("/proc", "/sys")
	if err != nil {
		t.Fatal(err)
	}
	if g.PageblockOrderSource != sysstate.PageblockFromTracepointFormat {
		t.Errorf("pageblock order %d from %q, want it from %q", g.PageblockOrder, g.PageblockOrderSource, sysstate.PageblockFromTracepointFormat)
	}
	b, err := os.ReadFile("/proc/pagetypeinfo")
	if err != nil {
		t.Fatal(err)
	}
	var kernel int
	if _, err := fmt.Sscanf(string(b), "Page block order: %d", &kernel); err != nil {
		t.Fatalf("reading pagetypeinfo's header: %v", err)
	}
	if g.PageblockOrder != kernel || s.pageblockOrder != kernel {
		t.Errorf("pageblock order %d (session %d), pagetypeinfo says %d", g.PageblockOrder, s.pageblockOrder, kernel)
	}
}
