package rawbtf

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// enumFixture is BTF with a named enum, a type that is not one, the
// anonymous GFP bit enum, a signed enum and a 64-bit one, marshalled by
// cilium/ebpf: the reference rawbtf must agree with.
func enumFixture(t testing.TB) (*btf.Builder, []byte, map[string]*btf.Enum) {
	t.Helper()
	enums := map[string]*btf.Enum{
		"zone_type": {Name: "zone_type", Size: 4, Values: []btf.EnumValue{{Name: "ZONE_DMA", Value: 0}, {Name: "ZONE_NORMAL", Value: 2}}},
		"gfp":       {Size: 4, Values: []btf.EnumValue{{Name: "___GFP_DMA_BIT", Value: 0}, {Name: "___GFP_NOWARN_BIT", Value: 13}}},
		"signed":    {Name: "signed", Size: 4, Signed: true, Values: []btf.EnumValue{{Name: "MINUS_ONE", Value: ^uint64(0)}, {Name: "BIG", Value: 0x7fffffff}}},
		"wide":      {Name: "wide", Size: 8, Values: []btf.EnumValue{{Name: "WIDE_HIGH", Value: 0x123456789abcdef0}, {Name: "WIDE_LOW", Value: 7}}},
	}
	b, err := btf.NewBuilder([]btf.Type{enums["zone_type"], &btf.Int{Name: "int", Size: 4}, enums["gfp"], enums["signed"], enums["wide"]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b, raw, enums
}

func TestEnumMembers(t *testing.T) {
	b, raw, enums := enumFixture(t)
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for key, e := range enums {
		id, err := b.Add(e) // the ID it already has
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.EnumMembers(uint32(id))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		// What cilium/ebpf reads back from the same bytes.
		typ, err := spec.TypeByID(id)
		if err != nil {
			t.Fatal(err)
		}
		var want []EnumMember
		for _, v := range typ.(*btf.Enum).Values {
			want = append(want, EnumMember{v.Name, v.Value})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: members %v, cilium/ebpf reads %v", key, got, want)
		}
	}
	if _, err := f.EnumMembers(2); err == nil { // the int
		t.Error("EnumMembers of an int succeeded")
	}
	if _, err := f.EnumMembers(99); err == nil {
		t.Error("EnumMembers of a missing type succeeded")
	}
}

func TestEnumNamed(t *testing.T) {
	b, raw, enums := enumFixture(t)
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"zone_type", "wide"} {
		want, _ := b.Add(enums[name])
		if got := f.EnumNamed(name); got != uint32(want) {
			t.Errorf("EnumNamed(%s) = %d, want %d", name, got, want)
		}
	}
	for _, name := range []string{"int", "zone", "ZONE_DMA", "zone_type_"} {
		if got := f.EnumNamed(name); got != 0 {
			t.Errorf("EnumNamed(%s) = %d, want none", name, got)
		}
	}
}
