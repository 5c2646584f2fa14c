package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// TestStrip gives a committed (stripped) object its line-info block back,
// filled with junk, strips it again, and checks what cilium/ebpf reads:
// no line info, every function and CO-RE relocation as before.
func TestStrip(t *testing.T) {
	src := "../../probe/loader/alloc_x86_bpfel.o"
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	sec := f.Section(".BTF.ext")
	ext := b[sec.Offset : sec.Offset+sec.Size]
	le := binary.LittleEndian
	hdr, lineOff, lineLen, coreOff := le.Uint32(ext[4:]), le.Uint32(ext[16:]), le.Uint32(ext[20:]), le.Uint32(ext[24:])
	if lineLen != 4 {
		t.Fatalf("committed object has %d bytes of line info: make generate did not strip it", lineLen)
	}
	// The stripped records still sit between the line info and the CO-RE
	// relocations: make them a block again, of junk.
	full := coreOff - lineOff
	le.PutUint32(ext[20:], full)
	for i := hdr + lineOff + 4; i < hdr+lineOff+full; i++ {
		ext[i] = 0xaa
	}
	path := filepath.Join(t.TempDir(), "obj.o")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ebpf.LoadCollectionSpec(path); err == nil {
		t.Fatal("cilium/ebpf read a junk line-info block without complaint: the test proves nothing")
	}
	if err := strip(path); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want, _ := os.ReadFile(src); !bytes.Equal(got, want) {
		t.Error("stripping the junk block did not give the committed object back")
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	funcs := 0
	for _, p := range spec.Programs {
		for _, ins := range p.Instructions {
			if _, ok := ins.Source().(*btf.Line); ok {
				t.Fatalf("%s: line info left: %v", p.Name, ins.Source())
			}
			if btf.FuncMetadata(&ins) != nil {
				funcs++
			}
		}
	}
	if funcs == 0 {
		t.Error("no function info: stripped too much")
	}
	if err := strip(path); err != nil {
		t.Errorf("stripping again: %v", err)
	}
}
