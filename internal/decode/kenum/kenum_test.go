package kenum

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// kernelSpec is a kernel BTF holding only the given types.
func kernelSpec(t *testing.T, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestFromBTF: names come from the kernel's enum, members outside the
// prefix (aliases, counts) are left out, and the first of two members
// with one value wins, as the kernel prints them.
func TestFromBTF(t *testing.T) {
	spec := kernelSpec(t, &btf.Enum{Name: "compact_priority", Size: 4, Values: []btf.EnumValue{
		{Name: "COMPACT_PRIO_SYNC_FULL", Value: 0}, {Name: "MIN_COMPACT_PRIORITY", Value: 0},
		{Name: "COMPACT_PRIO_SYNC_LIGHT", Value: 1}, {Name: "DEF_COMPACT_PRIORITY", Value: 1},
		{Name: "COMPACT_PRIO_ASYNC", Value: 2}, {Name: "INIT_COMPACT_PRIORITY", Value: 2},
	}})
	n := FromBTF(spec, "compact_priority", "COMPACT_PRIO_")
	for v, want := range map[int64]string{0: "sync_full", 1: "sync_light", 2: "async", 7: "7"} {
		if got := n.Name(v); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
	if v, ok := n.Value("async"); !ok || v != 2 {
		t.Errorf("Value(async) = %d, %v", v, ok)
	}
	if n.Source() != "kernel BTF" {
		t.Errorf("source %q", n.Source())
	}
}

// TestFromBTFMissing: without the enum, values stay numbers and Source
// says why; nothing is made up.
func TestFromBTFMissing(t *testing.T) {
	spec := kernelSpec(t, &btf.Int{Name: "int", Size: 4})
	for _, n := range []*Names{FromBTF(spec, "compact_result", "COMPACT_"), FromBTF(nil, "compact_result", "COMPACT_"), nil} {
		if got := n.Name(2); got != "2" {
			t.Errorf("name %q, want the number", got)
		}
		if !strings.HasPrefix(n.Source(), "unavailable") {
			t.Errorf("source %q", n.Source())
		}
		if _, ok := n.Value("deferred"); ok {
			t.Error("a missing table knows a value")
		}
	}
}
