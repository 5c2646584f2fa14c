package ksym

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// Load reads a kallsyms file, normally "/proc/kallsyms".
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading kallsyms: %w", err)
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return t, nil
}

// pfx is the prefix of the symbols CONFIG_FUNCTION_PADDING_BYTES adds for
// the padding in front of each function: "__pfx_tcp_v4_rcv" then
// "tcp_v4_rcv". They are about half the text symbols. They stay in the
// table (an interrupted call-depth thunk runs in that padding), but the
// function's name is stored as the tail of the __pfx_ name, not again.
const pfx = "__pfx_"

// Parse reads kallsyms lines: "ffffffff81621930 T __alloc_pages_noprof",
// with "\t[module]" after the name for module symbols.
func Parse(r io.Reader) (*Table, error) {
	b := builder{mods: map[string]uint16{"": 0}, t: &Table{mods: []string{""}}}
	// Size the slices once from the input size so they do not grow (and
	// copy) a dozen times: a kallsyms line is about 45 bytes, a third of
	// which is the name once __pfx_ tails are shared.
	size := sizeHint(r)
	est := size/45 + 16
	b.t.addrs = make([]uint64, 0, est)
	b.t.nameOff = make([]uint32, 0, est)
	b.t.nameLen = make([]uint16, 0, est)
	b.t.mod = make([]uint16, 0, est)
	b.global = make([]bool, 0, est)
	b.names.Grow(size/3 + 64)

	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", n, br.Size())
		}
		if len(line) > 0 {
			if perr := b.add(line); perr != nil {
				if perr == ErrHidden {
					return nil, perr // about the whole file, not a line
				}
				return nil, fmt.Errorf("line %d: %w", n, perr)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(b.t.addrs) == 0 {
		return nil, errors.New("no text symbols")
	}
	b.t.names = b.names.String()
	b.finish()
	return b.t, nil
}

// sizeHint guesses the input size. /proc/kallsyms stats as 0 bytes, so an
// unknown size is taken to be a stock kernel's, about 5.5 MB.
func sizeHint(r io.Reader) int {
	const stock = 5500 << 10
	switch r := r.(type) {
	case interface{ Len() int }: // bytes.Reader, strings.Reader, bytes.Buffer
		return r.Len()
	case *os.File:
		if fi, err := r.Stat(); err == nil && fi.Size() > 0 && fi.Size() < 1<<30 {
			return int(fi.Size())
		}
	}
	return stock
}

type builder struct {
	t        *Table
	names    strings.Builder
	mods     map[string]uint16
	global   []bool // per symbol until finish: T/W beat t/w among aliases
	unsorted bool
	lastPfx  string // the last __pfx_ name, to share its tail
	lastOff  uint32
}

// symLine is one kallsyms line split into its fields,
// "<hex> <type> <name>[\t[<module>]]"; mod is nil for the kernel image and
// still has its brackets.
type symLine struct {
	addr []byte
	typ  byte
	name []byte
	mod  []byte
}

// splitLine splits a kallsyms line without judging its fields.
func splitLine(l []byte) (symLine, error) {
	l = bytes.TrimRight(l, "\n")
	sp := bytes.IndexByte(l, ' ')
	if sp <= 0 || len(l) < sp+4 || l[sp+2] != ' ' {
		return symLine{}, fmt.Errorf("want \"address type name\", got %q", trunc(l))
	}
	f := symLine{addr: l[:sp], typ: l[sp+1], name: l[sp+3:]}
	if tab := bytes.IndexByte(f.name, '\t'); tab >= 0 {
		f.name, f.mod = f.name[:tab], f.name[tab+1:]
	}
	return f, nil
}

// add parses one line and keeps it if it is a text symbol.
func (b *builder) add(raw []byte) error {
	f, err := splitLine(raw)
	if err != nil {
		return err
	}
	switch f.typ {
	case 't', 'T', 'w', 'W':
	default:
		return nil
	}
	addr, ok := parseHex(f.addr)
	if !ok {
		return fmt.Errorf("address %q is not hexadecimal", trunc(f.addr))
	}
	if addr == 0 {
		// No text symbol lives at 0: the kernel zeroed the addresses.
		return ErrHidden
	}
	name, mod := f.name, f.mod
	if mod != nil {
		if len(mod) < 3 || mod[0] != '[' || mod[len(mod)-1] != ']' {
			return fmt.Errorf("module %q is not \"[name]\"", trunc(mod))
		}
		mod = mod[1 : len(mod)-1]
	}
	if len(name) == 0 || len(name) > 0xffff || bytes.IndexByte(name, ' ') >= 0 { // no tab left: cut above
		return fmt.Errorf("symbol name %q is not a name", trunc(name))
	}
	var mi uint16 // 0: the kernel image, most symbols, no map lookup
	if mod != nil {
		mi = b.modIndex(mod)
	}
	if mi == noIndex {
		return errors.New("more than 65534 modules")
	}
	off, err := b.name(name)
	if err != nil {
		return err
	}
	if n := len(b.t.addrs); n > 0 && addr < b.t.addrs[n-1] {
		b.unsorted = true
	}
	b.t.addrs = append(b.t.addrs, addr)
	b.t.nameOff = append(b.t.nameOff, off)
	b.t.nameLen = append(b.t.nameLen, uint16(len(name)))
	b.t.mod = append(b.t.mod, mi)
	b.global = append(b.global, f.typ == 'T' || f.typ == 'W')
	return nil
}

const noIndex = 0xffff

// modIndex interns a module name.
func (b *builder) modIndex(mod []byte) uint16 {
	if mi, ok := b.mods[string(mod)]; ok { // no allocation for the lookup
		return mi
	}
	if len(b.t.mods) >= noIndex {
		return noIndex
	}
	mi := uint16(len(b.t.mods))
	b.t.mods = append(b.t.mods, string(mod))
	b.mods[string(mod)] = mi
	return mi
}

// name stores a name and returns its offset, reusing the tail of the
// previous __pfx_ name when it is this one.
func (b *builder) name(name []byte) (uint32, error) {
	if b.lastPfx != "" && string(name) == b.lastPfx[len(pfx):] {
		return b.lastOff + uint32(len(pfx)), nil
	}
	off := b.names.Len()
	if off+len(name) > 1<<32-1 {
		return 0, errors.New("names exceed 4 GiB")
	}
	b.names.Write(name)
	b.lastPfx = ""
	if bytes.HasPrefix(name, []byte(pfx)) {
		// A view into the builder, not a copy: a Builder never changes
		// bytes it has written, and String does not copy.
		b.lastPfx, b.lastOff = b.names.String()[off:], uint32(off)
	}
	return uint32(off), nil
}

// finish sorts by address (module symbols need not come in order) and
// keeps one symbol per address: a global one over a local alias, else the
// first in the file.
func (b *builder) finish() {
	t := b.t
	if b.unsorted {
		sort.Stable(byAddr{t, b.global})
	}
	w := 0
	for r := range t.addrs {
		if w > 0 && t.addrs[w-1] == t.addrs[r] {
			if b.global[r] && !b.global[w-1] {
				b.move(w-1, r)
			}
			continue
		}
		b.move(w, r)
		w++
	}
	// Shrink to fit: the table lives as long as the process.
	t.addrs = slices.Clip(t.addrs[:w])
	t.nameOff = slices.Clip(t.nameOff[:w])
	t.nameLen = slices.Clip(t.nameLen[:w])
	t.mod = slices.Clip(t.mod[:w])
	if cap(t.addrs)-w > w/8 {
		t.addrs = slices.Clone(t.addrs)
		t.nameOff = slices.Clone(t.nameOff)
		t.nameLen = slices.Clone(t.nameLen)
		t.mod = slices.Clone(t.mod)
	}
	b.global = nil
}

func (b *builder) move(w, r int) {
	t := b.t
	t.addrs[w], t.nameOff[w], t.nameLen[w], t.mod[w], b.global[w] = t.addrs[r], t.nameOff[r], t.nameLen[r], t.mod[r], b.global[r]
}

type byAddr struct {
	t      *Table
	global []bool
}

func (s byAddr) Len() int           { return len(s.t.addrs) }
func (s byAddr) Less(i, j int) bool { return s.t.addrs[i] < s.t.addrs[j] }
func (s byAddr) Swap(i, j int) {
	t := s.t
	t.addrs[i], t.addrs[j] = t.addrs[j], t.addrs[i]
	t.nameOff[i], t.nameOff[j] = t.nameOff[j], t.nameOff[i]
	t.nameLen[i], t.nameLen[j] = t.nameLen[j], t.nameLen[i]
	t.mod[i], t.mod[j] = t.mod[j], t.mod[i]
	s.global[i], s.global[j] = s.global[j], s.global[i]
}

// parseHex parses up to 16 hex digits without allocating.
func parseHex(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

func trunc(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
