package sysstate

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// NodePool is one node's share of a huge page pool
// (/sys/devices/system/node/node<N>/hugepages/hugepages-<size>kB). The
// pool is per node: a fault takes a page from the nodes its memory policy
// and cpuset allow, so one node's pool can run out while another's has
// pages. Reservations are not kept per node.
type NodePool struct {
	Node       int    `json:"node"`
	PageSizeKB uint64 `json:"page_size_kb"`
	Total      uint64 `json:"total"`
	Free       uint64 `json:"free"`
	Surplus    uint64 `json:"surplus"`
}

// ReadNodePools reads every node's pools, by node then page size. A
// kernel without NUMA has no node directories: no pools, no error.
func ReadNodePools(sysRoot string) ([]NodePool, error) {
	dir := filepath.Join(sysRoot, "devices/system/node")
	nodes, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fileError(dir, err)
	}
	var out []NodePool
	for _, n := range nodes {
		id, ok := nodeID(n.Name())
		if !ok {
			continue
		}
		hdir := filepath.Join(dir, n.Name(), "hugepages")
		sizes, err := os.ReadDir(hdir)
		if os.IsNotExist(err) {
			continue // a memoryless node, or no hugetlb
		}
		if err != nil {
			return out, fileError(hdir, err)
		}
		for _, s := range sizes {
			kb, ok := poolSizeKB(s.Name())
			if !ok {
				continue
			}
			p := NodePool{Node: id, PageSizeKB: kb}
			for _, f := range []struct {
				name string
				dst  *uint64
			}{{"nr_hugepages", &p.Total}, {"free_hugepages", &p.Free}, {"surplus_hugepages", &p.Surplus}} {
				if *f.dst, err = readUintFile(filepath.Join(hdir, s.Name(), f.name)); err != nil {
					return out, err
				}
			}
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b NodePool) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.PageSizeKB, b.PageSizeKB))
	})
	return out, nil
}

// nodeID parses "node12".
func nodeID(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "node")
	if !ok || s == "" {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	return v, err == nil && v >= 0 && strconv.Itoa(v) == s
}

// NodeShortage is a page size whose pool is used up on some nodes while
// others still have free pages: a process bound to the empty nodes (by
// mbind, numactl --membind or a cpuset) gets no page although the pool as
// a whole has some, and its huge pages cannot be local.
type NodeShortage struct {
	PageSizeKB uint64 `json:"page_size_kb"`
	// Empty are the nodes with pages, all in use; Free the nodes with free
	// pages and how many.
	Empty []int          `json:"empty_nodes"`
	Free  map[int]uint64 `json:"free_by_node"`
}

func (s NodeShortage) String() string {
	var empty, free []string
	for _, n := range s.Empty {
		empty = append(empty, strconv.Itoa(n))
	}
	nodes := make([]int, 0, len(s.Free))
	for n := range s.Free {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		free = append(free, fmt.Sprintf("node %d: %d", n, s.Free[n]))
	}
	return fmt.Sprintf("%d kB pages: node %s exhausted (no free page) while %s free", s.PageSizeKB,
		strings.Join(empty, ", "), strings.Join(free, ", "))
}

// NodeShortages finds, per page size, nodes whose pool has pages but none
// free while another node has free pages.
func NodeShortages(pools []NodePool) []NodeShortage {
	bySize := map[uint64][]NodePool{}
	var sizes []uint64
	for _, p := range pools {
		if _, ok := bySize[p.PageSizeKB]; !ok {
			sizes = append(sizes, p.PageSizeKB)
		}
		bySize[p.PageSizeKB] = append(bySize[p.PageSizeKB], p)
	}
	slices.Sort(sizes)
	var out []NodeShortage
	for _, kb := range sizes {
		s := NodeShortage{PageSizeKB: kb, Free: map[int]uint64{}}
		for _, p := range bySize[kb] {
			switch {
			case p.Total > 0 && p.Free == 0:
				s.Empty = append(s.Empty, p.Node)
			case p.Free > 0:
				s.Free[p.Node] = p.Free
			}
		}
		if len(s.Empty) > 0 && len(s.Free) > 0 {
			out = append(out, s)
		}
	}
	return out
}
