package gfp

import (
	"reflect"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// The raw look-up is a shortcut: it must find the enum a full scan finds.
func TestKernelEnumShortcutMatchesScan(t *testing.T) {
	if kernelGFPEnum() == 0 {
		t.Skip("no ___GFP_*_BIT enum readable in this kernel's raw BTF")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skip(err)
	}
	fast, fastEnv, err := gfpEnum(spec, kernelGFPEnum())
	if err != nil {
		t.Fatal(err)
	}
	for typ, err := range spec.All() {
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := typ.(*btf.Enum); ok && hasValue(e, "___GFP_DMA_BIT") {
			bits, env := enumBits(e)
			if !reflect.DeepEqual(bits, fast) || !reflect.DeepEqual(env, fastEnv) {
				t.Errorf("shortcut %v, scan %v", fast, bits)
			}
			return
		}
	}
	t.Fatal("the scan found no enum")
}
