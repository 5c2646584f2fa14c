package ksym

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// Lookup returns the addresses of the named core-kernel symbols (module
// symbols are ignored) from a kallsyms file. Names it does not find, or
// finds at address 0 (kptr_restrict hides addresses from readers without
// CAP_SYSLOG), are left out of the map.
//
// It reads the file once without building a Table: the loader needs two
// per-CPU variables at start-up, and a Table of every text symbol costs
// megabytes.
func Lookup(path string, names ...string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading kallsyms: %w", err)
	}
	defer f.Close()
	m, err := lookup(f, names)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return m, nil
}

func lookup(r io.Reader, names []string) (map[string]uint64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	found := map[string]uint64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() && len(found) < len(want) {
		// "000000000001fb80 A __preempt_count"; lines that are not
		// "address type name" cannot be one of ours and are skipped.
		f, err := splitLine(sc.Bytes())
		if err != nil || f.mod != nil || !want[string(f.name)] {
			continue
		}
		a, ok := parseHex(f.addr)
		if !ok {
			return nil, fmt.Errorf("address of %s: %q is not hexadecimal", f.name, trunc(f.addr))
		}
		if a != 0 {
			found[string(f.name)] = a
		}
	}
	return found, sc.Err()
}
