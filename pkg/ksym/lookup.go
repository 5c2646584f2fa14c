package ksym

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
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
		// "000000000001fb80 A __preempt_count", modules add "\t[mod]".
		line := sc.Bytes()
		if bytes.IndexByte(line, '\t') >= 0 {
			continue
		}
		addr, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(rest) < 3 || rest[1] != ' ' {
			continue
		}
		name := string(rest[2:])
		if !want[name] {
			continue
		}
		a, err := strconv.ParseUint(string(addr), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("address of %s: %w", name, err)
		}
		if a != 0 {
			found[name] = a
		}
	}
	return found, sc.Err()
}
