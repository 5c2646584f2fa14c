package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fragmenter holds memory so that most free memory is in order-0 blocks:
// it touches nearly all free memory, gives back every other page and
// keeps the rest locked. With vm.compact_unevictable_allowed=0 the
// locked pages cannot be migrated, so compaction cannot rebuild
// higher-order blocks around them.
type fragmenter struct {
	regions [][]byte
}

// meminfo returns a /proc/meminfo field in KiB.
func meminfo(field string) (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("opening /proc/meminfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("finding %s in /proc/meminfo", field)
}

// fragment takes memory in chunks until MemFree is down to leaveKB, then
// frees every other page of what it took.
func (fr *fragmenter) fragment(leaveKB uint64) (takenKB uint64, err error) {
	page := os.Getpagesize()
	for {
		free, err := meminfo("MemFree")
		if err != nil {
			return takenKB, err
		}
		// Big steps first, then 1 MiB ones: what is left unfragmented
		// is where the high-order blocks are.
		chunk := 16 << 20
		if free < leaveKB+32<<10 {
			chunk = 1 << 20
		}
		if free < leaveKB+uint64(chunk>>10) {
			break
		}
		b, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return takenKB, fmt.Errorf("mapping %d bytes: %w", chunk, err)
		}
		// Huge pages would be one block each: freeing half of a THP
		// splits it back into the buddy allocator as whole blocks.
		if err := unix.Madvise(b, unix.MADV_NOHUGEPAGE); err != nil {
			return takenKB, fmt.Errorf("madvise NOHUGEPAGE: %w", err)
		}
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		fr.regions = append(fr.regions, b)
		takenKB += uint64(chunk >> 10)
	}
	for _, b := range fr.regions {
		for i := page; i < len(b); i += 2 * page {
			if err := unix.Madvise(b[i:i+page], unix.MADV_DONTNEED); err != nil {
				return takenKB, fmt.Errorf("madvise DONTNEED: %w", err)
			}
		}
		// Lock what is still there without faulting the holes back in.
		if _, _, e := unix.Syscall(unix.SYS_MLOCK2, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MLOCK_ONFAULT); e != 0 {
			return takenKB, fmt.Errorf("mlock2 ONFAULT: %w", e)
		}
	}
	return takenKB, nil
}

func (fr *fragmenter) release() {
	for _, b := range fr.regions {
		unix.Munmap(b)
	}
	fr.regions = nil
}

// sysctls sets /proc/sys values and remembers the old ones for restore.
type sysctls map[string]string

func (s sysctls) set(name, value string) error {
	p := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	old, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if _, ok := s[name]; !ok {
		s[name] = strings.TrimSpace(string(old))
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting %s=%s: %w", name, value, err)
	}
	return nil
}

func (s sysctls) restore() {
	for name, v := range s {
		os.WriteFile("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), []byte(v), 0o644)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
