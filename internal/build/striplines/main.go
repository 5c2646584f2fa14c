// Command striplines empties the line information of BPF objects' .BTF.ext
// sections, in place: `make generate` runs it on every object bpf2go
// writes.
//
// clang writes a line-info record for nearly every source line of a BPF
// program (9,400 of them, about 150 KB, in memtrace's objects), and every
// start paid for them: cilium/ebpf parses them with the object and hands
// them to the kernel with each program, and the kernel checks each one
// against the program, for output nobody reads (source lines in verifier
// logs and bpftool's dumps). Without them a six-family start took ~16%
// less CPU. The function and CO-RE relocation records, which the programs
// need, are kept as they are.
//
// The section keeps its size: its line-info length is set to the four
// bytes of the record size, which says there are no records, and the
// records stay behind as unreferenced bytes (moving the CO-RE relocations
// forward would mean rewriting the ELF section table for little).
//
// For source lines in a verifier log, build with BPF_LINE_INFO=1 (make
// generate skips this step then).
package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: striplines OBJECT...")
		os.Exit(2)
	}
	if os.Getenv("BPF_LINE_INFO") == "1" {
		return
	}
	for _, path := range os.Args[1:] {
		if err := strip(path); err != nil {
			fmt.Fprintf(os.Stderr, "striplines: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}

// The .BTF.ext header (linux/include/uapi/linux/btf.h, struct
// btf_ext_header): magic u16, version u8, flags u8, hdr_len u32,
// func_info_off u32, func_info_len u32, line_info_off u32, line_info_len
// u32, then (hdr_len ≥ 32) core_relo_off u32, core_relo_len u32. Offsets
// count from the end of the header; each info block starts with its u32
// record size.
const (
	btfMagic        = 0xeb9f
	lineInfoLenAt   = 20
	minHeaderLength = 24
)

func strip(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return err
	}
	sec := f.Section(".BTF.ext")
	if sec == nil {
		return errors.New("no .BTF.ext section")
	}
	if sec.Offset+sec.Size > uint64(len(b)) || sec.Size < minHeaderLength {
		return errors.New(".BTF.ext out of the file or shorter than its header")
	}
	ext := b[sec.Offset : sec.Offset+sec.Size]
	bo := f.ByteOrder
	if bo.Uint16(ext) != btfMagic {
		return fmt.Errorf(".BTF.ext magic %#x", bo.Uint16(ext))
	}
	hdrLen := bo.Uint32(ext[4:])
	lineOff, lineLen := bo.Uint32(ext[16:]), bo.Uint32(ext[lineInfoLenAt:])
	if lineLen <= 4 {
		return nil // nothing to strip, or stripped already
	}
	if uint64(hdrLen)+uint64(lineOff)+uint64(lineLen) > sec.Size {
		return errors.New("line info runs past .BTF.ext")
	}
	bo.PutUint32(ext[lineInfoLenAt:], 4)
	// Zero the records so no reader can take them for data.
	clear(ext[hdrLen+lineOff+4 : hdrLen+lineOff+lineLen])
	return os.WriteFile(path, b, 0o644)
}
