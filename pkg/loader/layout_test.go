package loader

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/pkg/event"
)

// TestLayoutMatchesBTF checks every Go struct that decodes a kernel record
// against the C layout in the compiled object's BTF: same size, and each
// C member at the offset of the Go field of the same position.
func TestLayoutMatchesBTF(t *testing.T) {
	cases := []struct {
		load  func() (*ebpf.CollectionSpec, error)
		cName string
		goVal any
	}{
		{loadAlloc, "event_hdr", allocEventHdr{}},
		{loadAlloc, "alloc_event", allocAllocEvent{}},
		{loadAlloc, "alloc_key", allocAllocKey{}},
		{loadAlloc, "alloc_val", allocAllocVal{}},
		{loadAlloc, "warn_event", allocWarnEvent{}},
		{loadExtfrag, "extfrag_event", extfragExtfragEvent{}},
		{loadExtfrag, "extfrag_key", extfragExtfragKey{}},
		{loadExtfrag, "extfrag_val", extfragExtfragVal{}},
		{loadHugetlb, "hugetlb_event", hugetlbHugetlbEvent{}},
		{loadHugetlb, "inflight", hugetlbInflight{}},
	}
	for _, c := range cases {
		t.Run(c.cName, func(t *testing.T) {
			spec, err := c.load()
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

// TestEnumValues checks constants mirrored by hand in Go against the C
// enums in the objects' BTF.
func TestEnumValues(t *testing.T) {
	spec, err := loadHugetlb()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{
		"CALL_SHMGET": callShmget, "CALL_MMAP": callMmap, "CALL_SHMAT": callShmat,
		"STAT_SEEN": statSeen, "STAT_LOST": statLost, "STAT_SAMPLED": statSampled, "STAT_MAP_FULL": statMapFull, "STAT_MAX": statMax,
		"CTX_PROCESS": uint64(event.ContextProcess), "CTX_SOFTIRQ": uint64(event.ContextSoftirq),
		"CTX_HARDIRQ": uint64(event.ContextHardirq), "CTX_NMI": uint64(event.ContextNMI), "CTX_UNKNOWN": uint64(event.ContextUnknown),
	}
	seen := 0
	for _, name := range []string{"hugetlb_call", "stat_index", "exec_ctx"} {
		var en *btf.Enum
		if err := spec.Types.TypeByName(name, &en); err != nil {
			t.Fatalf("enum %s not in BTF: %v", name, err)
		}
		for _, v := range en.Values {
			w, ok := want[v.Name]
			if !ok {
				t.Errorf("%s.%s has no Go mirror", name, v.Name)
				continue
			}
			seen++
			if w != v.Value {
				t.Errorf("%s: C %d, Go %d", v.Name, v.Value, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d of %d constants", seen, len(want))
	}
}
