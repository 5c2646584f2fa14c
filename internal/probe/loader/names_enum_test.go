package loader

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/migratetype"
	"github.com/memtrace/memtrace/internal/host/rawbtf"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// kernelEnumFixture is BTF shaped like the kernel's for the enums the
// names are built from: the anonymous GFP bit enum after another
// anonymous enum, and enum migratetype.
func kernelEnumFixture(t *testing.T) (*btf.Spec, *rawbtf.File) {
	t.Helper()
	other := &btf.Enum{Size: 4, Values: []btf.EnumValue{{Name: "PG_locked", Value: 0}}}
	bits := &btf.Enum{Size: 4, Values: []btf.EnumValue{
		{Name: "___GFP_DMA_BIT", Value: 0}, {Name: "___GFP_HIGHMEM_BIT", Value: 1}, {Name: "___GFP_NOWARN_BIT", Value: 13},
	}}
	mt := &btf.Enum{Name: "migratetype", Size: 4, Values: []btf.EnumValue{
		{Name: "MIGRATE_UNMOVABLE", Value: 0}, {Name: "MIGRATE_MOVABLE", Value: 1}, {Name: "MIGRATE_TYPES", Value: 2},
	}}
	b, err := btf.NewBuilder([]btf.Type{&btf.Int{Name: "int", Size: 4}, other, bits, mt}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	buf, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rawbtf.Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	return spec, raw
}

// The GFP enum read from the raw BTF at start and the one found in the
// parsed BTF where the raw cannot be mapped are the same members.
func TestGFPEnumRawMatchesParsed(t *testing.T) {
	spec, raw := kernelEnumFixture(t)
	want := []gfp.EnumMember{{Name: "___GFP_DMA_BIT", Value: 0}, {Name: "___GFP_HIGHMEM_BIT", Value: 1}, {Name: "___GFP_NOWARN_BIT", Value: 13}}
	if got := rawGFPEnum(raw); !reflect.DeepEqual(got, want) {
		t.Errorf("raw: %v, want %v", got, want)
	}
	if got := parsedGFPEnum(spec); !reflect.DeepEqual(got, want) {
		t.Errorf("parsed: %v, want %v", got, want)
	}
	if got := parsedGFPEnum(intOnlySpec(t)); got != nil {
		t.Errorf("parsed BTF without the enum: %v", got)
	}
}

// The same on the running kernel's BTF, when it can be mapped.
func TestGFPEnumRawMatchesParsedKernel(t *testing.T) {
	raw, err := rawbtf.Map(rawbtf.KernelPath)
	if err != nil {
		t.Skipf("kernel BTF cannot be mapped (before 6.16): %v", err)
	}
	defer raw.Close()
	fast := rawGFPEnum(raw)
	if fast == nil {
		t.Skip("no ___GFP_*_BIT enum in this kernel's BTF (before 6.10)")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skip(err)
	}
	if slow := parsedGFPEnum(spec); !reflect.DeepEqual(fast, slow) {
		t.Errorf("raw %v, parsed %v", fast, slow)
	}
}

// buildMigratetypes reads enum migratetype from the parsed BTF the
// session holds at start.
func TestBuildMigratetypes(t *testing.T) {
	spec, _ := kernelEnumFixture(t)
	s := &Session{kernel: spec}
	s.buildMigratetypes()
	if got := s.Migratetypes().Source(); got != "kernel BTF" {
		t.Errorf("Source() = %q", got)
	}
	if got := s.Migratetypes().Len(); got != 2 {
		t.Errorf("Len() = %d, want 2", got)
	}
	s.kernel = intOnlySpec(t)
	s.buildMigratetypes()
	if got, want := s.Migratetypes().Source(), migratetype.Default().Source()+": "; !strings.HasPrefix(got, want) {
		t.Errorf("without the enum: Source() = %q, want the default and a reason", got)
	}
}

// intOnlySpec is BTF with none of the enums.
func intOnlySpec(t *testing.T) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder([]btf.Type{&btf.Int{Name: "int", Size: 4}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}
