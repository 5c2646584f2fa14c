package loader

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// Values of enum preempt_source in bpf/common.h.
const (
	preemptNone       uint8 = 0
	preemptPercpuVar  uint8 = 1
	preemptPcpuHot    uint8 = 2
	preemptThreadInfo uint8 = 3
)

// preemptSource finds where this kernel keeps preempt_count, which tells
// softirq from hardirq from process context in hooks that have no
// tracepoint record. x86 keeps it in a per-CPU variable (__preempt_count,
// inside pcpu_hot from 6.1 to 6.14); other architectures in thread_info.
func preemptSource(kernel *btf.Spec) (src uint8, varName string, varID btf.TypeID) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "386" {
		return preemptThreadInfo, "", 0
	}
	for _, c := range []struct {
		name string
		src  uint8
	}{{"__preempt_count", preemptPercpuVar}, {"pcpu_hot", preemptPcpuHot}} {
		var v *btf.Var
		if err := kernel.TypeByName(c.name, &v); err != nil {
			continue
		}
		id, err := kernel.TypeID(v)
		if err != nil {
			continue
		}
		return c.src, c.name, id
	}
	return preemptNone, "", 0
}

// pseudoBTFID is BPF_PSEUDO_BTF_ID, the src_reg value of an ld_imm64 whose
// immediate is a kernel BTF type id (not named in cilium/ebpf's asm).
const pseudoBTFID = asm.R3

// percpuKsyms are the __ksym variables bpf/common.h declares.
var percpuKsyms = []string{"__preempt_count", "pcpu_hot"}

// rewritePercpuKsyms turns the typeless __ksym loads of per-CPU variables
// into BTF-id loads (BPF_PSEUDO_BTF_ID, object fd 0 = vmlinux), which is
// what libbpf emits for typed ksyms and what bpf_this_cpu_ptr needs. The
// variable not used on this kernel becomes a plain zero: its code is dead
// (guarded by preempt_src) and the verifier prunes it.
func rewritePercpuKsyms(prog *ebpf.ProgramSpec, varName string, varID btf.TypeID) {
	for i := range prog.Instructions {
		ins := &prog.Instructions[i]
		ref := ins.Reference()
		if ref == "" || !ins.OpCode.IsDWordLoad() || !isPercpuKsym(ref) {
			continue
		}
		repl := asm.LoadImm(ins.Dst, 0, asm.DWord)
		if ref == varName && varID != 0 {
			repl.Src = pseudoBTFID
			repl.Constant = int64(varID)
		}
		// Keep the source line information, drop the symbol reference.
		if src := ins.Source(); src != nil {
			repl = repl.WithSource(src)
		}
		*ins = repl
	}
}

func isPercpuKsym(name string) bool {
	for _, n := range percpuKsyms {
		if n == name {
			return true
		}
	}
	return false
}

var errNoKernelBTF = errors.New("kernel BTF not available")

func loadKernelBTF() (*btf.Spec, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoKernelBTF, err)
	}
	return spec, nil
}
