package sysstate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// HugePool is one hugetlb pool (one page size), as the kernel keeps it in
// /sys/kernel/mm/hugepages/hugepages-<size>kB. Counts are in pages of
// PageSizeKB.
type HugePool struct {
	PageSizeKB uint64 `json:"page_size_kb"`
	Total      uint64 `json:"total"`      // nr_hugepages, surplus included
	Free       uint64 `json:"free"`       // free_hugepages, reserved included
	Reserved   uint64 `json:"reserved"`   // resv_hugepages: promised to a mapping, not yet faulted in
	Surplus    uint64 `json:"surplus"`    // surplus_hugepages: allocated beyond nr_hugepages by overcommit
	Overcommit uint64 `json:"overcommit"` // nr_overcommit_hugepages: how many surplus pages may be allocated
}

// The arithmetic below is the one the Oracle huge page notes teach for
// /proc/meminfo: Free counts reserved pages too, so a pool is only really
// wasted where a page is neither used nor promised. Subtractions saturate
// at zero because the counters are read one file at a time and can be
// momentarily inconsistent.

// InUse is the number of pages mapped by some process: Total - Free.
func (p HugePool) InUse() uint64 { return sub(p.Total, p.Free) }

// InUseOrPromised adds the reserved pages a mapping will fault in later:
// Total - Free + Reserved.
func (p HugePool) InUseOrPromised() uint64 { return p.InUse() + p.Reserved }

// NeverUsed is the number of pages nobody uses or has asked for: Free -
// Reserved. Huge pages cannot serve anything else, so this memory is lost
// to the system until the pool shrinks.
func (p HugePool) NeverUsed() uint64 { return sub(p.Free, p.Reserved) }

// NeverUsedBytes is NeverUsed in bytes.
func (p HugePool) NeverUsedBytes() uint64 { return p.NeverUsed() * p.PageSizeKB * 1024 }

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// MarshalJSON adds the derived counts, so a reader of the JSON does not
// redo the arithmetic (and cannot get it wrong).
func (p HugePool) MarshalJSON() ([]byte, error) {
	type raw HugePool // no methods: avoids recursion
	return json.Marshal(struct {
		raw
		InUse           uint64 `json:"in_use"`
		InUseOrPromised uint64 `json:"in_use_or_promised"`
		NeverUsed       uint64 `json:"never_used"`
		NeverUsedBytes  uint64 `json:"never_used_bytes"`
	}{raw(p), p.InUse(), p.InUseOrPromised(), p.NeverUsed(), p.NeverUsedBytes()})
}

// hugeDir is where the pools live under the sysfs root.
const hugeDir = "kernel/mm/hugepages"

// readHugePools reads every pool under sysRoot, smallest page size first.
// A kernel without hugetlbfs has no such directory; that is reported, since
// a database asking for huge pages there gets none.
func readHugePools(sysRoot string) ([]HugePool, error) {
	dir := filepath.Join(sysRoot, hugeDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fileError(dir, err)
	}
	var pools []HugePool
	for _, e := range ents {
		size, ok := poolSizeKB(e.Name())
		if !ok {
			continue // not a pool directory; the kernel may add others
		}
		p, err := readHugePool(filepath.Join(dir, e.Name()), size)
		if err != nil {
			return nil, err
		}
		pools = append(pools, p)
	}
	slices.SortFunc(pools, func(a, b HugePool) int { return cmpUint(a.PageSizeKB, b.PageSizeKB) })
	return pools, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// poolSizeKB parses "hugepages-2048kB".
func poolSizeKB(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "hugepages-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "kB")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v > 0
}

func readHugePool(dir string, sizeKB uint64) (HugePool, error) {
	p := HugePool{PageSizeKB: sizeKB}
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{"nr_hugepages", &p.Total},
		{"free_hugepages", &p.Free},
		{"resv_hugepages", &p.Reserved},
		{"surplus_hugepages", &p.Surplus},
		{"nr_overcommit_hugepages", &p.Overcommit},
	} {
		v, err := readUintFile(filepath.Join(dir, f.name))
		if err != nil {
			return HugePool{}, err
		}
		*f.dst = v
	}
	return p, nil
}

// readUintFile reads a one-number sysfs or sysctl file. Such files are a
// few bytes, so a small stack buffer avoids os.ReadFile's allocations.
func readUintFile(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fileError(path, err)
	}
	defer f.Close()
	var buf [64]byte
	n, err := f.Read(buf[:])
	if err != nil && err != io.EOF { // EOF: empty file, said below
		return 0, fileError(path, err)
	}
	if n == len(buf) {
		return 0, fileError(path, fmt.Errorf("longer than %d bytes, want one number", len(buf)))
	}
	v, err := parseSingleUint(buf[:n])
	if err != nil {
		return 0, fileError(path, err)
	}
	return v, nil
}
