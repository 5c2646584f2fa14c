package gfp

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenMasks are values seen in real dmesg and ftrace output of different
// kernel generations, so every file decodes something meaningful and
// something foreign.
var goldenMasks = []uint64{
	0x0, 0x10, 0x20, 0x30, 0xd0, 0x200d0, 0x280da, 0x201d2, 0x4020, 0x8d0, // 2.6.32 / 3.10
	0x2080020, 0x24201ca, 0x14000c0, // 4.4-4.14
	0x480020, 0x6000c0, 0x6200ca, 0x600040, 0x4200, 0x484020, // 4.15-5.0
	0x800, 0x820, 0xa20, 0x2800, 0x2a20, 0xc00, 0xc40, 0xcc0, 0xcc2, 0xdc0, 0xd40, // 5.x / 6.x
	0x400cc0, 0x400cc2, 0x400dc0, 0x100cca, 0x1100cca, 0x140cca, 0x1c20ca, 0x1c24ca, 0x40dc0,
	0x200, 0x1000000, 0x4000000, 0xffffffff,
}

// decodeAll renders t's decoding of goldenMasks, one mask per line.
func decodeAll(t *Table) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# source: %s\n", t.Source())
	for _, m := range goldenMasks {
		fmt.Fprintf(&b, "%#-10x %-6s atomic=%-5v %s\n", m, t.Class(m), t.Atomic(m), t.String(m))
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file %s:\n%s", name, path, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "- %s\n+ %s\n", wl, gl)
		}
	}
	return b.String()
}

func formatFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*-mm_page_alloc.format"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no format files in testdata: %v", err)
	}
	return files
}

func versionOf(path string) string {
	return strings.TrimSuffix(filepath.Base(path), "-mm_page_alloc.format")
}

// enums612 are the ___GFP_*_BIT values of a 6.10-6.13 x86-64 kernel
// without KASAN_HW_TAGS or LOCKDEP, as kernel BTF would report them.
var enums612 = func() map[string]uint64 {
	env := map[string]uint64{}
	for i, n := range strings.Fields(`DMA HIGHMEM DMA32 MOVABLE RECLAIMABLE HIGH IO FS ZERO UNUSED
		DIRECT_RECLAIM KSWAPD_RECLAIM WRITE NOWARN RETRY_MAYFAIL NOFAIL NORETRY MEMALLOC COMP
		NOMEMALLOC HARDWALL THISNODE ACCOUNT ZEROTAGS NO_OBJ_EXT LAST`) {
		env["___GFP_"+n+"_BIT"] = uint64(i)
	}
	return env
}()

func loadFormatFile(t *testing.T, path string) *Table {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]uint64
	if strings.Contains(path, "unresolved-enums") {
		env = enums612
	}
	tb, err := fromFormat(string(data), env, "tracepoint format "+versionOf(path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tb
}

func TestGoldenFormatFiles(t *testing.T) {
	for _, path := range formatFiles(t) {
		t.Run(versionOf(path), func(t *testing.T) {
			checkGolden(t, "format-"+versionOf(path), decodeAll(loadFormatFile(t, path)))
		})
	}
}

func TestGoldenBuiltin(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			tb, err := l.table()
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "builtin-"+l.name, decodeAll(tb))
		})
	}
}
