package loader

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestFunctionStartsAnchored: every function of every family's programs
// starts with a source comment once parsed, so a CO-RE comment further in
// is valid line info for the kernel; and the objects hold no line info of
// their own (make generate strips it).
func TestFunctionStartsAnchored(t *testing.T) {
	for _, f := range registry {
		spec, err := f.load()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range spec.Programs {
			for i, ins := range p.Instructions {
				if _, ok := ins.Source().(*btf.Line); ok {
					t.Fatalf("%s/%s: line info at instruction %d: the objects should be stripped", f.signal, p.Name, i)
				}
				if btf.FuncMetadata(&ins) != nil && ins.Source() == nil {
					t.Errorf("%s/%s: function at instruction %d without a source comment", f.signal, p.Name, i)
				}
			}
		}
	}
}
