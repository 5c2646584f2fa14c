package doctor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/memtrace/memtrace/internal/host/rawbtf"
	"github.com/memtrace/memtrace/pkg/gfp"
)

func TestKernelGFPEnumMissing(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "vmlinux")
	if err := os.WriteFile(garbage, []byte("not BTF, not even close to it"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "none"), garbage} {
		if got := kernelGFPEnum(path); got != nil {
			t.Errorf("%s: %d members, want none", path, len(got))
		}
	}
}

// TestKernelGFPEnumRunning: doctor names this host's GFP flags from the
// kernel's enum without loading BPF or parsing BTF with cilium/ebpf.
func TestKernelGFPEnumRunning(t *testing.T) {
	if _, err := os.Stat(rawbtf.KernelPath); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	enum := kernelGFPEnum(rawbtf.KernelPath)
	if enum == nil {
		t.Skip("kernel older than 6.10: no ___GFP_*_BIT enum")
	}
	tb, err := gfp.Load("", enum, "")
	if err != nil {
		t.Fatal(err)
	}
	if tb.Source() != "kernel BTF" {
		t.Errorf("Source() = %q, want kernel BTF", tb.Source())
	}
	if _, ok := tb.Bit("__GFP_NOWARN"); !ok {
		t.Error("no __GFP_NOWARN in the table built from the kernel's enum")
	}
}
