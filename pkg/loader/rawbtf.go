package loader

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// rawBTF reads just enough of raw BTF to find per-CPU variables. Asking
// cilium/ebpf for the .data..percpu section inflates every per-CPU
// variable and every type they reach, most of the kernel's types: ~5 ms
// of CPU and megabytes of garbage on every start, for two offsets.
// Only the header, the type records' sizes and a few names are read.
type rawBTF struct {
	bo      binary.ByteOrder
	types   []byte
	strs    []byte
	offsets []uint32 // offset in types of each type ID; ID 0 is void
}

// BTF kinds (include/uapi/linux/btf.h).
const (
	btfKindInt      = 1
	btfKindPtr      = 2
	btfKindArray    = 3
	btfKindStruct   = 4
	btfKindUnion    = 5
	btfKindEnum     = 6
	btfKindFwd      = 7
	btfKindTypedef  = 8
	btfKindVolatile = 9
	btfKindConst    = 10
	btfKindRestrict = 11
	btfKindFunc     = 12
	btfKindFuncProt = 13
	btfKindVar      = 14
	btfKindDatasec  = 15
	btfKindFloat    = 16
	btfKindDeclTag  = 17
	btfKindTypeTag  = 18
	btfKindEnum64   = 19
)

const btfTypeLen = 12 // struct btf_type: name_off, info, size/type

func parseRawBTF(b []byte) (*rawBTF, error) {
	if len(b) < 24 {
		return nil, errors.New("reading BTF header: too short")
	}
	var bo binary.ByteOrder
	switch {
	case binary.LittleEndian.Uint16(b) == 0xeb9f:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint16(b) == 0xeb9f:
		bo = binary.BigEndian
	default:
		return nil, errors.New("reading BTF header: bad magic")
	}
	hdrLen := uint64(bo.Uint32(b[4:]))
	typeOff, typeLen := uint64(bo.Uint32(b[8:])), uint64(bo.Uint32(b[12:]))
	strOff, strLen := uint64(bo.Uint32(b[16:])), uint64(bo.Uint32(b[20:]))
	if hdrLen+typeOff+typeLen > uint64(len(b)) || hdrLen+strOff+strLen > uint64(len(b)) {
		return nil, errors.New("reading BTF header: sections beyond the end")
	}
	r := &rawBTF{
		bo:    bo,
		types: b[hdrLen+typeOff : hdrLen+typeOff+typeLen],
		strs:  b[hdrLen+strOff : hdrLen+strOff+strLen],
	}
	r.offsets = append(make([]uint32, 0, len(r.types)/32), 0)
	for off := 0; off < len(r.types); {
		if off+btfTypeLen > len(r.types) {
			return nil, fmt.Errorf("reading BTF type %d: truncated", len(r.offsets))
		}
		info := bo.Uint32(r.types[off+4:])
		extra, err := btfExtraLen(info)
		if err != nil {
			return nil, fmt.Errorf("reading BTF type %d: %w", len(r.offsets), err)
		}
		r.offsets = append(r.offsets, uint32(off))
		off += btfTypeLen + extra
	}
	return r, nil
}

// btfExtraLen is the size of the data that follows a type record.
func btfExtraLen(info uint32) (int, error) {
	vlen := int(info & 0xffff)
	switch kind := (info >> 24) & 0x1f; kind {
	case btfKindPtr, btfKindFwd, btfKindTypedef, btfKindVolatile, btfKindConst,
		btfKindRestrict, btfKindFunc, btfKindFloat, btfKindTypeTag:
		return 0, nil
	case btfKindInt, btfKindVar, btfKindDeclTag:
		return 4, nil
	case btfKindArray:
		return 12, nil
	case btfKindStruct, btfKindUnion, btfKindDatasec, btfKindEnum64:
		return 12 * vlen, nil
	case btfKindEnum, btfKindFuncProt:
		return 8 * vlen, nil
	default:
		return 0, fmt.Errorf("unknown kind %d", kind)
	}
}

// rawType is one type record: its kind, name, size or referenced type,
// and the data that follows it.
type rawType struct {
	kind     uint32
	kindFlag bool
	name     string
	sizeType uint32
	data     []byte
	vlen     int
}

func (r *rawBTF) typ(id uint32) (rawType, error) {
	if id == 0 || int(id) >= len(r.offsets) {
		return rawType{}, fmt.Errorf("no BTF type %d", id)
	}
	off := int(r.offsets[id])
	info := r.bo.Uint32(r.types[off+4:])
	extra, _ := btfExtraLen(info) // checked by parseRawBTF
	name, err := r.name(r.bo.Uint32(r.types[off:]))
	if err != nil {
		return rawType{}, err
	}
	return rawType{
		kind:     (info >> 24) & 0x1f,
		kindFlag: info>>31 == 1,
		name:     name,
		sizeType: r.bo.Uint32(r.types[off+8:]),
		data:     r.types[off+btfTypeLen : off+btfTypeLen+extra],
		vlen:     int(info & 0xffff),
	}, nil
}

func (r *rawBTF) name(off uint32) (string, error) {
	if int(off) >= len(r.strs) {
		return "", fmt.Errorf("BTF string offset %d out of range", off)
	}
	s := r.strs[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s), nil
}

// sectionVar is a variable of a data section: its offset in the section
// and its type.
type sectionVar struct {
	offset uint64
	typeID uint32
}

// sectionVars returns the variables of the first data section called
// name, by variable name; nil if there is no such section.
func (r *rawBTF) sectionVars(name string) (map[string]sectionVar, error) {
	for id := 1; id < len(r.offsets); id++ {
		off := r.offsets[id]
		if (r.bo.Uint32(r.types[off+4:])>>24)&0x1f != btfKindDatasec {
			continue
		}
		ds, err := r.typ(uint32(id))
		if err != nil {
			return nil, err
		}
		if ds.name != name {
			continue
		}
		vars := make(map[string]sectionVar, ds.vlen)
		for i := 0; i < ds.vlen; i++ {
			e := ds.data[i*12:]
			v, err := r.typ(r.bo.Uint32(e))
			if err != nil {
				return nil, err
			}
			if v.kind != btfKindVar {
				continue
			}
			vars[v.name] = sectionVar{offset: uint64(r.bo.Uint32(e[4:])), typeID: v.sizeType}
		}
		return vars, nil
	}
	return nil, nil
}

// memberOffset is the byte offset of a member of the struct typeID
// refers to, through typedefs and qualifiers.
func (r *rawBTF) memberOffset(typeID uint32, member string) (uint64, bool, error) {
	t, err := r.typ(typeID)
	for depth := 0; err == nil && depth < 32; depth++ {
		switch t.kind {
		case btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict, btfKindTypeTag:
			t, err = r.typ(t.sizeType)
			continue
		case btfKindStruct:
			for i := 0; i < t.vlen; i++ {
				m := t.data[i*12:]
				name, err := r.name(r.bo.Uint32(m))
				if err != nil {
					return 0, false, err
				}
				if name != member {
					continue
				}
				bits := r.bo.Uint32(m[8:])
				if t.kindFlag {
					bits &= 0xffffff // the top byte is a bitfield's size
				}
				return uint64(bits / 8), true, nil
			}
			return 0, false, nil
		}
		return 0, false, nil
	}
	return 0, false, err
}
