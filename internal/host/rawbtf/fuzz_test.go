package rawbtf

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

// FuzzParse: malformed BTF gives an error or answers, never a panic.
func FuzzParse(f *testing.F) {
	pc := &btf.Int{Name: "int", Size: 4}
	st := &btf.Struct{Name: "rq", Size: 8, Members: []btf.Member{{Name: "cpu", Type: pc, Offset: 32}}}
	v := &btf.Var{Name: "runqueues", Type: st, Linkage: btf.GlobalVar}
	ds := &btf.Datasec{Name: ".data..percpu", Size: 8, Vars: []btf.VarSecinfo{{Type: v, Offset: 0, Size: 8}}}
	en := &btf.Enum{Size: 4, Values: []btf.EnumValue{{Name: "___GFP_NOWARN_BIT", Value: 13}}}
	b, err := btf.NewBuilder([]btf.Type{pc, st, v, ds, en}, nil)
	if err != nil {
		f.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	_, enums, _ := enumFixture(f)
	f.Add(enums)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		r.EnumWithValue("___GFP_NOWARN_BIT")
		// Every type ID, so member records of any enum are read.
		for id := uint32(0); id <= uint32(len(r.offsets)); id++ {
			r.EnumMembers(id)
		}
		r.EnumNamed("zone_type")
		vars, err := r.SectionVars(".data..percpu")
		if err != nil {
			return
		}
		for _, v := range vars {
			r.MemberOffset(v.TypeID, "cpu")
		}
	})
}
