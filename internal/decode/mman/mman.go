// Package mman names the flags of mmap(2), mprotect(2) and shmget(2) and
// syscall errnos the way strace prints them, for reporting how a database
// asked for huge pages and why it did not get them.
//
// The values are Linux's generic layout (asm-generic/mman-common.h), shared
// by amd64 and arm64; the few architecture-specific bits both
// architectures could report (MAP_32BIT on amd64, PROT_BTI on arm64) are
// named too, since the other architecture never sets them.
package mman

import (
	"fmt"
	"strings"
)

// HugeShift is where mmap and shmget encode log2 of the requested huge page
// size (MAP_HUGE_SHIFT, SHM_HUGE_SHIFT); 0 there means the default size.
const (
	HugeShift    = 26
	hugeMask     = 0x3f
	hugeSizeBits = hugeMask << HugeShift
)

type flagName struct {
	bit  uint64
	name string
}

// HugePageSize returns the huge page size, in bytes, encoded in the MAP_HUGE_*
// or SHM_HUGE_* bits of flags, or 0 when the default size was requested.
func HugePageSize(flags uint64) uint64 {
	n := (flags >> HugeShift) & hugeMask
	if n == 0 {
		return 0
	}
	return 1 << n
}

// hugeName renders the size bits as prefix+"2MB", or the way strace does
// ("21<<MAP_HUGE_SHIFT") for sizes below 1 KiB that no kernel uses.
func hugeName(prefix string, flags uint64) string {
	n := (flags >> HugeShift) & hugeMask
	switch {
	case n < 10:
		return fmt.Sprintf("%d<<%sSHIFT", n, prefix)
	case n < 20:
		return fmt.Sprintf("%s%dKB", prefix, uint64(1)<<(n-10))
	case n < 30:
		return fmt.Sprintf("%s%dMB", prefix, uint64(1)<<(n-20))
	default:
		return fmt.Sprintf("%s%dGB", prefix, uint64(1)<<(n-30))
	}
}

// appendFlags appends the names of the set bits in table order and returns
// the bits left over.
func appendFlags(out []string, flags uint64, table []flagName) ([]string, uint64) {
	for _, f := range table {
		if flags&f.bit != 0 {
			out = append(out, f.name)
			flags &^= f.bit
		}
	}
	return out, flags
}

func join(parts []string, rest uint64) string {
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", rest))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}
