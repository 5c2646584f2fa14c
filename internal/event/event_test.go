package event

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNothingOfMemtrace keeps the event model at the bottom of the
// dependency graph: every package may import it, so it may import none of
// them (it used to import internal/decode/container, and the outputs the loader).
func TestImportsNothingOfMemtrace(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/memtrace/memtrace/") {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
	if _, err := os.Stat("event.go"); err != nil {
		t.Fatalf("not run from the package directory: %v", err)
	}
}

func TestParseSignals(t *testing.T) {
	got, err := ParseSignals(" hugetlb,,alloc ")
	if err != nil || !reflect.DeepEqual(got, []Signal{SignalHugetlb, SignalAlloc}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "alloc,stall"} {
		if _, err := ParseSignals(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestContainerShortID(t *testing.T) {
	long := strings.Repeat("4b94289948ca", 5) + "abcd"
	for in, want := range map[string]string{long: "4b94289948ca", "db01": "db01", strings.ToUpper(long): strings.ToUpper(long)} {
		if got := (Container{ID: in}).ShortID(); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckComm(t *testing.T) {
	for comm, want := range map[string]string{
		"postgres":         "",
		"exactly15chars!":  "",
		"\xff\xfe":         "", // a kernel name is bytes, not UTF-8
		"":                 "empty",
		"sixteen-chars-16": "longer than the kernel's 15-character",
		"nul\x00":          "NUL",
	} {
		err := CheckComm(comm)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckComm(%q) = %v, want %q", comm, err, want)
		}
	}
}
