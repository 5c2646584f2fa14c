// Package rawbtf answers a few questions about BTF (the kernel's type
// information) by reading its records in place. cilium/ebpf inflates a
// type and every type it reaches into Go values; for the per-CPU data
// section, or when scanning for an anonymous enum, that is most of the
// kernel's types: milliseconds of CPU and megabytes of garbage on every
// start of memtrace, for a few numbers.
package rawbtf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// File is parsed BTF: the type records' offsets, nothing inflated.
type File struct {
	bo      binary.ByteOrder
	types   []byte
	strs    []byte
	offsets []uint32 // offset in types of each type ID; ID 0 is void
	mapped  []byte   // the mapping to undo on Close, if Map made one
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

// KernelPath is where the running kernel exposes its BTF.
const KernelPath = "/sys/kernel/btf/vmlinux"

// Map maps the BTF file at path read-only and parses it. The kernel maps
// its own copy of vmlinux BTF (since 6.16), which costs no memory of
// ours; before 6.16, and for files that cannot be mapped, it fails, and
// callers that parse the BTF with cilium/ebpf anyway use that, others
// Open. Close unmaps it.
func Map(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	r, err := Parse(b)
	if err != nil {
		unix.Munmap(b)
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	r.mapped = b
	return r, nil
}

// Open is Map, or where the file cannot be mapped (kernels before 6.16),
// a copy of it read into memory (vmlinux BTF is a few MB): for callers
// that need a few answers and have no parsed BTF to fall back on.
func Open(path string) (*File, error) {
	if r, err := Map(path); err == nil {
		return r, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return r, nil
}

// Close unmaps a File from Map; the File must not be used after.
func (r *File) Close() error {
	if r.mapped == nil {
		return nil
	}
	err := unix.Munmap(r.mapped)
	r.mapped, r.types, r.strs = nil, nil, nil
	return err
}

// Parse reads the BTF in b, which must stay unchanged while the File is used.
func Parse(b []byte) (*File, error) {
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
	r := &File{
		bo:    bo,
		types: b[hdrLen+typeOff : hdrLen+typeOff+typeLen],
		strs:  b[hdrLen+strOff : hdrLen+strOff+strLen],
	}
	// Two passes: the first checks every record and counts them, so the
	// index is allocated once at its size (6.18's vmlinux has ~125,000
	// types: growing it by appends allocated 1.5 MB for 0.5).
	n, err := r.walk(nil)
	if err != nil {
		return nil, err
	}
	r.offsets = make([]uint32, 1, n+1)
	r.walk(func(off int) { r.offsets = append(r.offsets, uint32(off)) })
	return r, nil
}

// walk checks the type records in order and calls each (when not nil)
// with every record's offset; it returns how many there are.
func (r *File) walk(each func(off int)) (int, error) {
	n := 0
	for off := 0; off < len(r.types); n++ {
		if off+btfTypeLen > len(r.types) {
			return 0, fmt.Errorf("reading BTF type %d: truncated", n+1)
		}
		extra, err := btfExtraLen(r.bo.Uint32(r.types[off+4:]))
		if err != nil {
			return 0, fmt.Errorf("reading BTF type %d: %w", n+1, err)
		}
		if off+btfTypeLen+extra > len(r.types) {
			return 0, fmt.Errorf("reading BTF type %d: truncated", n+1)
		}
		if each != nil {
			each(off)
		}
		off += btfTypeLen + extra
	}
	return n, nil
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

func (r *File) typ(id uint32) (rawType, error) {
	if id == 0 || int(id) >= len(r.offsets) {
		return rawType{}, fmt.Errorf("no BTF type %d", id)
	}
	off := int(r.offsets[id])
	info := r.bo.Uint32(r.types[off+4:])
	extra, _ := btfExtraLen(info) // checked by Parse
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

func (r *File) name(off uint32) (string, error) {
	if int(off) >= len(r.strs) {
		return "", fmt.Errorf("BTF string offset %d out of range", off)
	}
	s := r.strs[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s), nil
}

// SectionVar is a variable of a data section: its offset in the section
// and its type.
type SectionVar struct {
	Offset uint64
	TypeID uint32
}

// SectionVars returns the variables of the first data section called
// name, by variable name; nil if there is no such section.
func (r *File) SectionVars(name string) (map[string]SectionVar, error) {
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
		vars := make(map[string]SectionVar, ds.vlen)
		for i := 0; i < ds.vlen; i++ {
			e := ds.data[i*12:]
			v, err := r.typ(r.bo.Uint32(e))
			if err != nil {
				return nil, err
			}
			if v.kind != btfKindVar {
				continue
			}
			vars[v.name] = SectionVar{Offset: uint64(r.bo.Uint32(e[4:])), TypeID: v.sizeType}
		}
		return vars, nil
	}
	return nil, nil
}

// MemberOffset is the byte offset of a member of the struct typeID
// refers to, through typedefs and qualifiers and into anonymous structs
// and unions, as C names them: x86's pcpu_hot keeps preempt_count in an
// anonymous struct inside an anonymous union (6.2 to 6.14).
func (r *File) MemberOffset(typeID uint32, member string) (uint64, bool, error) {
	if member == "" {
		return 0, false, nil
	}
	budget := maxMembersVisited
	return r.memberOffset(typeID, member, 0, &budget)
}

// maxMembersVisited bounds MemberOffset's search, which malformed BTF
// (anonymous members that contain themselves) could make endless.
const maxMembersVisited = 1 << 16

func (r *File) memberOffset(typeID uint32, member string, nesting int, budget *int) (uint64, bool, error) {
	if nesting > 8 {
		return 0, false, nil // no C type nests anonymous members this deep
	}
	t, err := r.typ(typeID)
	for depth := 0; err == nil && depth < 32; depth++ {
		switch t.kind {
		case btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict, btfKindTypeTag:
			t, err = r.typ(t.sizeType)
			continue
		case btfKindStruct, btfKindUnion:
			return r.searchMembers(t, member, nesting, budget)
		}
		return 0, false, nil
	}
	return 0, false, err
}

// searchMembers looks for member among t's members and inside its
// anonymous ones, in order.
func (r *File) searchMembers(t rawType, member string, nesting int, budget *int) (uint64, bool, error) {
	for i := 0; i < t.vlen; i++ {
		if *budget--; *budget < 0 {
			return 0, false, nil
		}
		m := t.data[i*12:]
		name, err := r.name(r.bo.Uint32(m))
		if err != nil {
			return 0, false, err
		}
		if name != "" && name != member {
			continue
		}
		bits := r.bo.Uint32(m[8:])
		if t.kindFlag {
			bits &= 0xffffff // the top byte is a bitfield's size
		}
		if name == member {
			return uint64(bits / 8), true, nil
		}
		off, ok, err := r.memberOffset(r.bo.Uint32(m[4:]), member, nesting+1, budget)
		if err != nil || ok {
			return uint64(bits/8) + off, ok, err
		}
	}
	return 0, false, nil
}
