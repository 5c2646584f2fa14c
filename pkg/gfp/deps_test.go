package gfp

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandardLibraryOnly: gfp is a public library; what it imports
// becomes every user's dependency, so it imports the standard library
// only (BTF is read by the caller, see FromEnum).
func TestStandardLibraryOnly(t *testing.T) {
	goTool, err := exec.LookPath("go") // go test puts its own first in PATH
	if err != nil {
		t.Skipf("no go command to list packages with: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/memtrace/memtrace/pkg/gfp" {
			t.Errorf("gfp depends on %s", dep)
		}
	}
}
