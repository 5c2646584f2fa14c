package rawbtf

import "fmt"

// EnumMember is one member of an enum, 32- or 64-bit. Members of a
// signed enum are sign-extended, as cilium/ebpf reports them.
type EnumMember struct {
	Name  string
	Value uint64
}

// enumStride is the size of one member record of a type of kind kind,
// 0 when the kind is not an enum.
func enumStride(kind uint32) int {
	switch kind {
	case btfKindEnum:
		return 8 // name_off, val
	case btfKindEnum64:
		return 12 // name_off, val_lo32, val_hi32
	}
	return 0
}

// EnumWithValue returns the ID of the first enum (32- or 64-bit) that
// has a value called name, 0 if none has. Enums may be anonymous, as the
// kernel's ___GFP_*_BIT one is: cilium/ebpf can only find it by
// inflating every type before it.
func (r *File) EnumWithValue(name string) uint32 {
	for id := 1; id < len(r.offsets); id++ {
		off := int(r.offsets[id])
		info := r.bo.Uint32(r.types[off+4:])
		stride := enumStride((info >> 24) & 0x1f)
		if stride == 0 {
			continue
		}
		vals := r.types[off+btfTypeLen:]
		for i := 0; i < int(info&0xffff); i++ {
			if r.nameIs(r.bo.Uint32(vals[i*stride:]), name) {
				return uint32(id)
			}
		}
	}
	return 0
}

// EnumNamed returns the ID of the first enum (32- or 64-bit) called
// name, 0 if there is none.
func (r *File) EnumNamed(name string) uint32 {
	for id := 1; id < len(r.offsets); id++ {
		off := int(r.offsets[id])
		if enumStride((r.bo.Uint32(r.types[off+4:])>>24)&0x1f) != 0 && r.nameIs(r.bo.Uint32(r.types[off:]), name) {
			return uint32(id)
		}
	}
	return 0
}

// EnumMembers returns the members of the enum id in the order BTF
// records them.
func (r *File) EnumMembers(id uint32) ([]EnumMember, error) {
	t, err := r.typ(id)
	if err != nil {
		return nil, err
	}
	stride := enumStride(t.kind)
	if stride == 0 {
		return nil, fmt.Errorf("BTF type %d is not an enum (kind %d)", id, t.kind)
	}
	// The kind flag marks a signed enum (since 6.0, with ENUM64).
	signed := t.kindFlag
	out := make([]EnumMember, 0, t.vlen)
	for i := 0; i < t.vlen; i++ {
		e := t.data[i*stride:]
		name, err := r.name(r.bo.Uint32(e))
		if err != nil {
			return nil, err
		}
		lo := r.bo.Uint32(e[4:])
		var v uint64
		switch {
		case stride == 12:
			v = uint64(r.bo.Uint32(e[8:]))<<32 | uint64(lo)
		case signed:
			v = uint64(int64(int32(lo)))
		default:
			v = uint64(lo)
		}
		out = append(out, EnumMember{Name: name, Value: v})
	}
	return out, nil
}

// nameIs compares a string of the string section without copying it.
func (r *File) nameIs(off uint32, name string) bool {
	end := int(off) + len(name)
	return end < len(r.strs) && r.strs[end] == 0 && string(r.strs[off:end]) == name
}
