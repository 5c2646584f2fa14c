package rawbtf

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestParseRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("not BTF at all, certainly not"), make([]byte, 24)} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%q: no error", b)
		}
	}
}

func TestEnumWithValue(t *testing.T) {
	named := &btf.Enum{Name: "zone_type", Size: 4, Values: []btf.EnumValue{{Name: "ZONE_DMA", Value: 0}}}
	gfpBits := &btf.Enum{Size: 4, Values: []btf.EnumValue{{Name: "___GFP_DMA_BIT", Value: 0}, {Name: "___GFP_NOWARN_BIT", Value: 13}}}
	b, err := btf.NewBuilder([]btf.Type{named, &btf.Int{Name: "int", Size: 4}, gfpBits}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		value string
		enum  *btf.Enum
	}{{"___GFP_NOWARN_BIT", gfpBits}, {"ZONE_DMA", named}, {"___GFP_NOWARN", nil}, {"___GFP_NOWARN_BIT_", nil}} {
		id := f.EnumWithValue(tc.value)
		if tc.enum == nil {
			if id != 0 {
				t.Errorf("%s: found type %d, want none", tc.value, id)
			}
			continue
		}
		wantID, err := b.Add(tc.enum) // the ID it already has
		if err != nil {
			t.Fatal(err)
		}
		if id != uint32(wantID) {
			t.Errorf("%s: type %d, want %d", tc.value, id, wantID)
		}
	}
}
