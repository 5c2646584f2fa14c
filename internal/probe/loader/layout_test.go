package loader

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/event"
)

// objects are the embedded program sets, by their bpf2go prefix.
var objects = map[string]func() (*ebpf.CollectionSpec, error){
	"alloc": loadAlloc, "extfrag": loadExtfrag, "hugetlb": loadHugetlb,
	"reclaim": loadReclaim, "compaction": loadCompaction, "hugefault": loadHugefault,
}

// layoutCases are every struct shared by C and Go, in every object that
// has it: the structs of bpf/common.h are compiled into each.
var layoutCases = []struct {
	obj   string
	cName string
	goVal any
}{
	{"alloc", "memtrace_config", allocMemtraceConfig{}},
	{"extfrag", "memtrace_config", extfragMemtraceConfig{}},
	{"hugetlb", "memtrace_config", hugetlbMemtraceConfig{}},
	{"alloc", "event_hdr", allocEventHdr{}},
	{"extfrag", "event_hdr", extfragExtfragEvent{}.Hdr},
	{"hugetlb", "event_hdr", hugetlbHugetlbEvent{}.Hdr},
	{"alloc", "alloc_event", allocAllocEvent{}},
	{"alloc", "alloc_key", allocAllocKey{}},
	{"alloc", "alloc_val", allocAllocVal{}},
	{"alloc", "warn_event", allocWarnEvent{}},
	{"alloc", "atomic_demand", allocAtomicDemand{}},
	{"alloc", "atomic_top_key", allocAtomicTopKey{}},
	{"alloc", "atomic_top_val", allocAtomicTopVal{}},
	{"extfrag", "extfrag_event", extfragExtfragEvent{}},
	{"extfrag", "extfrag_key", extfragExtfragKey{}},
	{"extfrag", "extfrag_val", extfragExtfragVal{}},
	{"hugetlb", "hugetlb_event", hugetlbHugetlbEvent{}},
	{"hugetlb", "inflight", hugetlbInflight{}},
	{"reclaim", "memtrace_config", reclaimMemtraceConfig{}},
	{"compaction", "memtrace_config", compactionMemtraceConfig{}},
	{"reclaim", "event_hdr", reclaimReclaimEvent{}.Hdr},
	{"compaction", "event_hdr", compactionCompactionEvent{}.Hdr},
	{"reclaim", "stall_key", reclaimStallKey{}},
	{"compaction", "stall_key", compactionStallKey{}},
	{"reclaim", "reclaim_event", reclaimReclaimEvent{}},
	{"reclaim", "reclaim_val", reclaimReclaimVal{}},
	{"reclaim", "reclaim_inflight", reclaimReclaimInflight{}},
	{"reclaim", "stall_stack", reclaimStallStack{}},
	{"compaction", "stall_stack", compactionStallStack{}},
	{"compaction", "compaction_event", compactionCompactionEvent{}},
	{"compaction", "compact_val", compactionCompactVal{}},
	{"compaction", "compact_window", compactionCompactWindow{}},
	{"hugefault", "memtrace_config", hugefaultMemtraceConfig{}},
	{"hugefault", "event_hdr", hugefaultHugefaultEvent{}.Hdr},
	{"hugefault", "hugefault_event", hugefaultHugefaultEvent{}},
	{"hugefault", "vma_info", hugefaultVmaInfo{}},
	{"hugefault", "maple_walk", hugefaultMapleWalk{}},
}

// TestLayoutMatchesBTF checks every Go struct shared with the programs
// (records, map keys and values, the configuration) against the C layout
// in the compiled object's BTF: same size, and each C member at the
// offset of the Go field of the same position.
func TestLayoutMatchesBTF(t *testing.T) {
	for _, c := range layoutCases {
		t.Run(c.obj+"/"+c.cName, func(t *testing.T) {
			spec, err := objects[c.obj]()
			if err != nil {
				t.Fatal(err)
			}
			var st *btf.Struct
			if err := spec.Types.TypeByName(c.cName, &st); err != nil {
				t.Fatalf("struct %s not in BTF: %v", c.cName, err)
			}
			gt := reflect.TypeOf(c.goVal)
			if uintptr(st.Size) != gt.Size() {
				t.Fatalf("size: C %d, Go %d", st.Size, gt.Size())
			}
			var fields []reflect.StructField
			for i := 0; i < gt.NumField(); i++ {
				if f := gt.Field(i); f.Name != "_" {
					fields = append(fields, f)
				}
			}
			if len(fields) != len(st.Members) {
				t.Fatalf("members: C %d, Go %d", len(st.Members), len(fields))
			}
			for i, m := range st.Members {
				f := fields[i]
				if uintptr(m.Offset.Bytes()) != f.Offset {
					t.Errorf("%s.%s at C offset %d, Go field %s at %d", c.cName, m.Name, m.Offset.Bytes(), f.Name, f.Offset)
				}
				if !strings.EqualFold(strings.ReplaceAll(m.Name, "_", ""), f.Name) && m.Name != "_pad" {
					t.Errorf("%s member %d: C %q, Go %q", c.cName, i, m.Name, f.Name)
				}
			}
		})
	}
}

// declared returns the names of the structs or enums ("struct", "enum")
// defined in memtrace's own BPF sources (not the benchmark's), without
// CO-RE local views (name___flavour), which mirror the kernel, not Go.
func declared(t *testing.T, kind string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + kind + ` (\w+) \{`)
	var names []string
	for _, pat := range []string{"../../../bpf/*.c", "../../../bpf/*.h"} {
		files, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasPrefix(filepath.Base(f), "bench_") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				if !strings.Contains(m[1], "___") {
					names = append(names, m[1])
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("no %s found in ../../../bpf", kind)
	}
	return names
}

// TestEveryStructChecked keeps layoutCases complete: a struct added to
// the C sources must be added there (and generated with -type in gen.go).
func TestEveryStructChecked(t *testing.T) {
	checked := map[string]bool{}
	for _, c := range layoutCases {
		checked[c.cName] = true
	}
	for _, name := range declared(t, "struct") {
		if !checked[name] {
			t.Errorf("struct %s of bpf/ has no layout case (and maybe no -type in gen.go)", name)
		}
	}
}

// generatedConsts reads the constants bpf2go wrote into this package's
// bindings, by name.
func generatedConsts(t *testing.T) map[string]uint64 {
	t.Helper()
	files, err := filepath.Glob("*_bpfel.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated bindings: %v", err)
	}
	out := map[string]uint64{}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, id := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.INT {
						continue
					}
					v, err := strconv.ParseUint(lit.Value, 0, 64)
					if err != nil {
						t.Fatalf("%s: %v", id.Name, err)
					}
					out[id.Name] = v
				}
			}
		}
	}
	return out
}

// goName is bpf2go's Go name of a C identifier: event_kind -> EventKind.
func goName(c string) string {
	var b strings.Builder
	for _, w := range strings.Split(c, "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// TestEnumsGenerated checks every enum of memtrace's BPF sources, in the
// BTF of every object that has it, against the Go constants bpf2go
// generated: each value must exist in Go, with the same number. A C enum
// Go reads without -type in gen.go (a hand-written mirror) fails here,
// and so do objects compiled from different versions of bpf/common.h.
func TestEnumsGenerated(t *testing.T) {
	consts := generatedConsts(t)
	for _, name := range declared(t, "enum") {
		found := false
		for obj, load := range objects {
			spec, err := load()
			if err != nil {
				t.Fatal(err)
			}
			var en *btf.Enum
			if spec.Types.TypeByName(name, &en) != nil {
				continue
			}
			found = true
			for _, v := range en.Values {
				goVal, ok := -1, false
				for prefix := range objects {
					if g, has := consts[prefix+goName(name)+v.Name]; has {
						goVal, ok = int(g), true
					}
				}
				if !ok {
					t.Errorf("%s: %s.%s has no generated Go constant (add -type %s in gen.go)", obj, name, v.Name, name)
				} else if uint64(goVal) != v.Value {
					t.Errorf("%s: %s.%s is %d in C, %d in Go", obj, name, v.Name, v.Value, goVal)
				}
			}
		}
		if !found {
			t.Errorf("enum %s is in no object's BTF: keep it there with an unused pointer, as bpf/common.h does", name)
		}
	}
}

// TestContextNames checks the translation of enum exec_ctx into the event
// model: every C value gets the context of its own name.
func TestContextNames(t *testing.T) {
	spec, err := loadAlloc()
	if err != nil {
		t.Fatal(err)
	}
	var en *btf.Enum
	if err := spec.Types.TypeByName("exec_ctx", &en); err != nil {
		t.Fatal(err)
	}
	for _, v := range en.Values {
		want := strings.ToLower(strings.TrimPrefix(v.Name, "CTX_"))
		if got := contextOf(uint8(v.Value)).String(); got != want {
			t.Errorf("%s: context %q, want %q", v.Name, got, want)
		}
	}
	if got := contextOf(200).String(); got != "unknown" {
		t.Errorf("out-of-range context: %q", got)
	}
}

// TestCountersCoverStats checks that Stats reads every counter the
// programs keep, each index of enum stat_index below STAT_MAX, into its
// own field of event.Stats.
func TestCountersCoverStats(t *testing.T) {
	var st event.Stats
	c := counters(&st)
	fields := map[*uint64]bool{}
	for i := allocStatIndex(0); i < allocStatIndexSTAT_MAX; i++ {
		f, ok := c[i]
		if !ok {
			t.Errorf("stat_index %d is not read", i)
			continue
		}
		fields[f] = true
	}
	if len(c) != int(allocStatIndexSTAT_MAX) || len(fields) != reflect.TypeOf(st).NumField() {
		t.Errorf("%d counters into %d fields; stat_index has %d, event.Stats %d fields",
			len(c), len(fields), allocStatIndexSTAT_MAX, reflect.TypeOf(st).NumField())
	}
}

// TestAtomicsFor510 checks every program of every object for atomic
// instructions other than a plain add (BPF_XADD): Debian 11's 5.10
// refuses the others ("BPF_STX uses reserved fields", 5.12 added them),
// and clang emits them unasked, e.g. an atomic OR for an atomic add of a
// constant 0, which the reclaim family's kswapd wakeups once did.
func TestAtomicsFor510(t *testing.T) {
	for obj, load := range objects {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range spec.Programs {
			for _, ins := range p.Instructions {
				if op := ins.OpCode.AtomicOp(); op != asm.InvalidAtomic && op != asm.AddAtomic {
					t.Errorf("%s: program %s: %v needs kernel 5.12", obj, name, ins)
				}
			}
		}
	}
}
