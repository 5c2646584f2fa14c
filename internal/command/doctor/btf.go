package doctor

import "github.com/cilium/ebpf/btf"

// loadKernelBTF returns the running kernel's BTF, or nil: without it gfp
// falls back to its built-in tables.
func loadKernelBTF() *btf.Spec {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil
	}
	return spec
}
