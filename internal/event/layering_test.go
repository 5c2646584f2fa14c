package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/memtrace/memtrace/"

// TestOutputsDoNotImportProbes keeps the pipeline's layers apart: the
// commands and the outputs read the probes through Source (and a start
// function cmd/memtrace gives them). None imports a package of the probe
// stage, and none depends on the loader through another package. (The
// GFP decoder, pkg/gfp, reads the kernel's raw BTF with
// internal/host/rawbtf: a file parser, not the probes.)
func TestOutputsDoNotImportProbes(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goCmd, "list", "-deps=false", "-json=ImportPath,Imports,Deps",
		module+"internal/command/...", module+"internal/present/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	n := 0
	for {
		var p struct {
			ImportPath    string
			Imports, Deps []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		for _, d := range p.Imports {
			if strings.HasPrefix(d, module+"internal/probe/") {
				t.Errorf("%s imports %s", p.ImportPath, d)
			}
		}
		for _, d := range p.Deps {
			if d == module+"internal/probe/loader" {
				t.Errorf("%s depends on %s", p.ImportPath, d)
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list found %d packages under internal/command and internal/present", n)
	}
}
