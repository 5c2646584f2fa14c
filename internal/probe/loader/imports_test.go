package loader

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ciliumAllowed are the packages that may import github.com/cilium/ebpf
// (issue 12): the session core with its signal families and generated
// bindings, and the benchmarks. Every other package gets kernel facts
// from them as plain values (GFP and migratetype enums as member lists,
// preempt_count through rawbtf), so decoders, outputs and doctor stay
// free of BPF.
var ciliumAllowed = []string{
	"github.com/memtrace/memtrace/internal/probe/loader",
	"github.com/memtrace/memtrace/bench",
}

func ciliumAllowedFor(pkg string) bool {
	for _, p := range ciliumAllowed {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// TestOnlyTheProbeLayerImportsCilium walks the module's import graph,
// for each architecture memtrace is built for, and fails on a non-test
// package outside ciliumAllowed that imports github.com/cilium/ebpf or
// one of its packages.
func TestOnlyTheProbeLayerImportsCilium(t *testing.T) {
	// go test puts its own go command first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list packages with: %v", err)
	}
	root, err := exec.Command(goTool, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("finding the module root: %v", err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		// -e: a package that does not build for arch still lists its imports.
		cmd := exec.Command(goTool, "list", "-e", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
		cmd.Dir = strings.TrimSpace(string(root))
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list for %s: %v\n%s", arch, err, stderr.Bytes())
		}
		pkgs, loaderSeen := 0, false
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 0 {
				continue
			}
			pkg := fields[0]
			pkgs++
			for _, imp := range fields[1:] {
				if imp != "github.com/cilium/ebpf" && !strings.HasPrefix(imp, "github.com/cilium/ebpf/") {
					continue
				}
				if pkg == ciliumAllowed[0] {
					loaderSeen = true
				}
				if !ciliumAllowedFor(pkg) {
					t.Errorf("%s (%s) imports %s: only the session core, its signal families and bench/ may; pass it plain values instead", pkg, arch, imp)
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		// Guard against a listing that silently matched nothing.
		if pkgs < 10 || !loaderSeen {
			t.Fatalf("go list for %s listed %d packages, loader importing cilium/ebpf: %v; the check saw nothing", arch, pkgs, loaderSeen)
		}
	}
}
