package ksym

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Module extents. kallsyms gives no sizes, so the nearest symbol below an
// address is only right when the address is inside the code that symbol
// starts. Past the last symbol of a module lie other things the module
// area holds: BPF programs and trampolines JITed after kallsyms was read
// (a fexit hook's own trampoline is the top frame of every stack it
// takes), other modules' gaps. /proc/modules gives each module's base and
// size: an address beyond its module's end belongs to no module symbol.

// maxModules bounds the lines read from /proc/modules: a kernel has a few
// hundred modules, and the table's module index is 16 bits.
const maxModules = noIndex

// LoadModules reads a modules file (normally "/proc/modules") and bounds
// t's module symbols by their module's extent. Modules the table has no
// symbol of are ignored; a module listed at address 0 (hidden from this
// reader) is left unbounded.
func (t *Table) LoadModules(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading module extents: %w", err)
	}
	defer f.Close()
	if err := t.parseModules(f); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// parseModules reads lines "name size refs deps state 0xaddr [taints]".
func (t *Table) parseModules(r io.Reader) error {
	idx := make(map[string]int, len(t.mods))
	for i, m := range t.mods {
		if i > 0 {
			idx[m] = i
		}
	}
	end := make([]uint64, len(t.mods))
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if n > maxModules {
			return errors.New("more modules than the table can index")
		}
		f := bytes.Fields(sc.Bytes())
		if len(f) < 6 {
			return fmt.Errorf("line %d: %d fields, want at least 6", n, len(f))
		}
		size, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: size %q: %w", n, trunc(f[1]), err)
		}
		base, ok := parseHex(bytes.TrimPrefix(f[5], []byte("0x")))
		if !ok {
			return fmt.Errorf("line %d: address %q is not hexadecimal", n, trunc(f[5]))
		}
		i, known := idx[string(f[0])]
		if !known || base == 0 || base+size < base {
			continue
		}
		end[i] = base + size
	}
	if err := sc.Err(); err != nil {
		return err
	}
	t.modEnd = end
	return nil
}

// beyondModule reports whether addr, given to symbol i, lies past the end
// of that symbol's module.
func (t *Table) beyondModule(i int, addr uint64) bool {
	m := t.mod[i]
	return m != 0 && int(m) < len(t.modEnd) && t.modEnd[m] != 0 && addr >= t.modEnd[m]
}
