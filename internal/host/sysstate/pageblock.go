package sysstate

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
)

// Where PageblockOrder came from, most trustworthy first.
const (
	// PageblockFromPagetypeinfo: the kernel's own "Page block order: 9"
	// line; /proc/pagetypeinfo is readable by root only.
	PageblockFromPagetypeinfo = "pagetypeinfo"
	// PageblockFromTracepointFormat: the kernel's own pageblock_order as
	// compiled, from the print format of the kmem/mm_page_alloc_extfrag
	// tracepoint ("pageblock_order=%d", whose argument is the macro
	// expanded to constants: PageblockOrderFromFormat). It costs a small
	// tracefs file instead of /proc/pagetypeinfo, which the kernel
	// generates whole, with interrupts off, for its first line.
	PageblockFromTracepointFormat = "tracepoint_format"
	// PageblockFromPMDSize: log2 of the THP PMD size over the page size,
	// which is how x86 and arm64 define pageblock_order.
	PageblockFromPMDSize = "thp_pmd_size"
	// PageblockFromHugepagesize: the same from meminfo's default huge page
	// size, an estimate (wrong when default_hugepagesz=1G).
	PageblockFromHugepagesize = "meminfo_hugepagesize"
)

// defaultMaxOrder is MAX_PAGE_ORDER on x86 and most arm64 builds; the real
// one is read from the number of buddyinfo columns when there are some.
const defaultMaxOrder = 10

// parsePagetypeinfoHeader reads the order from the first lines of
// /proc/pagetypeinfo:
//
//	Page block order: 9
//	Pages per block:  512
//
// The second line is checked against the first when present, so a corrupt
// file is not trusted.
func parsePagetypeinfoHeader(data []byte) (int, error) {
	order := -1
	for n := 1; len(data) > 0 && n <= 3; n++ {
		var line []byte
		line, data = nextLine(data)
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v, err := strconv.Atoi(string(bytes.TrimSpace(val)))
		switch string(key) {
		case "Page block order":
			if err != nil || v < 0 || v > 30 {
				return 0, errAtLine(n, "page block order %q is not an order", truncate(bytes.TrimSpace(val)))
			}
			order = v
		case "Pages per block":
			if order < 0 {
				return 0, errAtLine(n, "\"Pages per block\" before \"Page block order\"")
			}
			if err != nil || v != 1<<order {
				return 0, errAtLine(n, "pages per block %q does not match order %d", truncate(bytes.TrimSpace(val)), order)
			}
			return order, nil
		}
	}
	if order < 0 {
		return 0, errors.New("no \"Page block order\" line")
	}
	return order, nil
}

// hostProc is the running kernel's procfs. Its pagetypeinfo is read once
// per process: the kernel writes the whole file for the first line,
// walking every free list and pageblock of the node with the zone lock
// held and interrupts off (14-22 ms of kernel time on a 24 GiB VM), and
// the pageblock order it gives is fixed at boot. watch and capture take a
// snapshot and start the session, and each read it.
const hostProc = "/proc"

// hostPageblock is the running kernel's pageblock order once found, and
// where it came from (nil: not found yet).
var hostPageblock atomic.Pointer[pageblockAnswer]

type pageblockAnswer struct {
	order  int
	source string
}

// KnowHostPageblockOrder records the running kernel's pageblock order,
// found by the caller from one of the kernel's own figures (e.g.
// PageblockFromTracepointFormat), so that no reader of /proc in this
// process reads /proc/pagetypeinfo for it.
func KnowHostPageblockOrder(order int, source string) {
	hostPageblock.Store(&pageblockAnswer{order, source})
}

// readPageblockOrder finds pageblock_order, the unit the page allocator
// groups by migrate type and compaction works in. It prefers the kernel's
// own figure and falls back to arithmetic the kernel does the same way; the
// second result says which. hugepagesizeKB is meminfo's Hugepagesize (0 if
// unknown); maxOrder caps the result as the kernel does.
func readPageblockOrder(procRoot, sysRoot string, hugepagesizeKB uint64, maxOrder int) (int, string, error) {
	if procRoot == hostProc {
		if a := hostPageblock.Load(); a != nil {
			return a.order, a.source, nil
		}
	}
	path := filepath.Join(procRoot, "pagetypeinfo")
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		order, err := parsePagetypeinfoHeader(data)
		if err != nil {
			return 0, "", fileError(path, err)
		}
		if procRoot == hostProc {
			KnowHostPageblockOrder(order, PageblockFromPagetypeinfo)
		}
		return order, PageblockFromPagetypeinfo, nil
	case !errors.Is(err, os.ErrPermission) && !errors.Is(err, os.ErrNotExist):
		return 0, "", fileError(path, err)
	}
	// Not root (mode 0400) or no such file: derive it.
	pageKB := uint64(os.Getpagesize() / 1024)
	pmdPath := filepath.Join(sysRoot, "kernel/mm/transparent_hugepage/hpage_pmd_size")
	if b, err := readUintFile(pmdPath); err == nil && b >= 1024 {
		if o, ok := orderOf(b/1024, pageKB, maxOrder); ok {
			return o, PageblockFromPMDSize, nil
		}
	}
	if o, ok := orderOf(hugepagesizeKB, pageKB, maxOrder); ok {
		return o, PageblockFromHugepagesize, nil
	}
	return 0, "", fmt.Errorf("finding pageblock order: %s unreadable, no THP PMD size, no Hugepagesize in meminfo", path)
}

// orderOf is log2(sizeKB/pageKB) capped at maxOrder, when sizeKB is a
// power-of-two multiple of the page size.
func orderOf(sizeKB, pageKB uint64, maxOrder int) (int, bool) {
	if pageKB == 0 || sizeKB < pageKB || sizeKB%pageKB != 0 {
		return 0, false
	}
	n := sizeKB / pageKB
	if n&(n-1) != 0 {
		return 0, false
	}
	return min(bits.TrailingZeros64(n), maxOrder), true
}
