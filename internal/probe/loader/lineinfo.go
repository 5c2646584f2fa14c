package loader

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// anchorLineInfo gives the first instruction of every function a source
// comment, its name, when it has none. The embedded objects carry no line
// info (make generate strips it, internal/build/striplines: parsing and
// checking ~9,400 records cost every start ~16% of its CPU), but CO-RE in
// cilium/ebpf marks each instruction it poisons (a field this kernel
// lacks, behind bpf_core_field_exists) with a comment, which it hands to
// the kernel as line info; the kernel then wants line info at the start
// of every function and refuses the program ("missing bpf_line_info for
// func#0"). With a comment at each function start the line info stays
// valid: one record per function, plus the poisoned instructions.
func anchorLineInfo(spec *ebpf.CollectionSpec) {
	for _, p := range spec.Programs {
		for i := range p.Instructions {
			ins := &p.Instructions[i]
			if fn := btf.FuncMetadata(ins); fn != nil && ins.Source() == nil {
				*ins = ins.WithSource(asm.Comment(fn.Name))
			}
		}
	}
}
