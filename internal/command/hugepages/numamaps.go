package hugepages

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/decode/mounts"
)

// NUMA placement of huge pages. The pool is per node, and a process's
// huge pages are where its faults found them: on a multi-socket host a
// database's shared memory can sit on the other socket, or one node's
// pool runs dry while another's is free. /proc/PID/numa_maps says, per
// mapping, how many pages are on each node.

// NumaMapping is one line of /proc/PID/numa_maps: "7f3a2c000000 default
// file=/anon_hugepage\040(deleted) huge dirty=36 N0=20 N1=16
// kernelpagesize_kB=2048".
type NumaMapping struct {
	Start  uint64 `json:"start"`
	Policy string `json:"policy"` // default, bind:1, interleave:0-1, prefer:0, ...
	File   string `json:"file,omitempty"`
	// Huge marks a hugetlb mapping; its node counts are huge pages.
	Huge bool `json:"huge"`
	// Pages is the pages present per node (N<node>=<pages>).
	Pages       map[int]uint64 `json:"pages_by_node"`
	PageSizeKB  uint64         `json:"page_size_kb"`
	Dirty, Anon uint64         `json:"-"`
}

// ParseNumaMaps reads a numa_maps file. Lines it cannot read are an
// error naming the line; fields it does not know are skipped (kernels
// add some).
func ParseNumaMaps(r io.Reader) ([]NumaMapping, error) {
	var out []NumaMapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseNumaLine(line)
		if err != nil {
			return out, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func parseNumaLine(line string) (NumaMapping, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return NumaMapping{}, fmt.Errorf("%q: want an address and a policy", truncate(line))
	}
	start, err := strconv.ParseUint(f[0], 16, 64)
	if err != nil {
		return NumaMapping{}, fmt.Errorf("%q: address is not hex", truncate(f[0]))
	}
	m := NumaMapping{Start: start, Policy: f[1], Pages: map[int]uint64{}}
	for _, tok := range f[2:] {
		k, v, hasValue := strings.Cut(tok, "=")
		if !hasValue {
			if k == "huge" {
				m.Huge = true
			}
			continue
		}
		switch {
		case k == "file":
			m.File = mounts.Unescape(v)
		case k == "kernelpagesize_kB":
			if m.PageSizeKB, err = strconv.ParseUint(v, 10, 64); err != nil {
				return m, fmt.Errorf("kernelpagesize_kB=%q", truncate(v))
			}
		case k == "dirty":
			m.Dirty, _ = strconv.ParseUint(v, 10, 64)
		case k == "anon":
			m.Anon, _ = strconv.ParseUint(v, 10, 64)
		case len(k) > 1 && k[0] == 'N' && k[1] >= '0' && k[1] <= '9':
			node, err1 := strconv.Atoi(k[1:])
			pages, err2 := strconv.ParseUint(v, 10, 64)
			if err1 != nil || err2 != nil || node < 0 || node > 1<<16 {
				return m, fmt.Errorf("%q is not N<node>=<pages>", truncate(tok))
			}
			m.Pages[node] += pages
		}
	}
	return m, nil
}

// ReadNumaMaps reads /proc/PID/numa_maps.
func ReadNumaMaps(procRoot string, pid int) ([]NumaMapping, error) {
	path := filepath.Join(procRoot, strconv.Itoa(pid), "numa_maps")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := ParseNumaMaps(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ms, nil
}

// NodeUse is a process's huge pages on one node, in kB, per page size.
type NodeUse struct {
	Node       int    `json:"node"`
	PageSizeKB uint64 `json:"page_size_kb"`
	KB         uint64 `json:"kb"`
}

// HugeByNode sums the huge pages of the hugetlb mappings per node and
// page size, by node then size.
func HugeByNode(ms []NumaMapping) []NodeUse {
	sum := map[[2]uint64]uint64{}
	for _, m := range ms {
		if !m.Huge {
			continue
		}
		for node, pages := range m.Pages {
			sum[[2]uint64{uint64(node), m.PageSizeKB}] += pages * m.PageSizeKB
		}
	}
	out := make([]NodeUse, 0, len(sum))
	for k, kb := range sum {
		out = append(out, NodeUse{Node: int(k[0]), PageSizeKB: k[1], KB: kb})
	}
	slices.SortFunc(out, func(a, b NodeUse) int {
		if a.Node != b.Node {
			return a.Node - b.Node
		}
		return cmp.Compare(a.PageSizeKB, b.PageSizeKB)
	})
	return out
}
