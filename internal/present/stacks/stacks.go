// Package stacks holds the failing kernel stacks of a capture, counted
// from its exact in-kernel aggregates: as a tree for a flame graph and as
// a pprof profile (github.com/google/pprof/profile) that go tool pprof,
// Pyroscope, Parca and Grafana open.
package stacks

import (
	"sort"
	"strings"

	"github.com/memtrace/memtrace/internal/event"
)

// NoStack stands for the frames of a failure whose stack was not read
// (stack_id < 0: the stack map was full, or stacks were not asked for).
const NoStack = "[no stack]"

// Node is one frame of the tree, its count the failures whose stack
// passes through it (from the root, outermost frame first).
type Node struct {
	Frame    string
	Count    uint64
	Children []*Node // by count, largest first, then by frame
}

// Tree builds the flame graph's tree of the failures in aggs: the root
// ("all") counts every failure; below it the frames from outermost to
// innermost. THP fallbacks are left out when withTHP is false.
func Tree(aggs []event.AllocAggregate, withTHP bool) *Node {
	root := &Node{Frame: "all"}
	for _, a := range aggs {
		if a.THPFallback && !withTHP {
			continue
		}
		root.Count += a.Count
		n := root
		for _, f := range Outermost(a.Stack) {
			n = n.child(f)
			n.Count += a.Count
		}
	}
	root.sort()
	return root
}

// Outermost returns a stack's frames outermost first (the capture stores
// them innermost first, as the kernel prints them), NoStack when empty.
func Outermost(stack []string) []string {
	if len(stack) == 0 {
		return []string{NoStack}
	}
	out := make([]string, len(stack))
	for i, f := range stack {
		out[len(stack)-1-i] = f
	}
	return out
}

func (n *Node) child(frame string) *Node {
	for _, c := range n.Children {
		if c.Frame == frame {
			return c
		}
	}
	c := &Node{Frame: frame}
	n.Children = append(n.Children, c)
	return c
}

func (n *Node) sort() {
	sort.Slice(n.Children, func(i, j int) bool {
		a, b := n.Children[i], n.Children[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Frame < b.Frame
	})
	for _, c := range n.Children {
		c.sort()
	}
}

// Nodes counts the nodes of the tree, the root included.
func (n *Node) Nodes() int {
	k := 1
	for _, c := range n.Children {
		k += c.Nodes()
	}
	return k
}

// Depth is the number of levels of the tree, the root included.
func (n *Node) Depth() int {
	d := 0
	for _, c := range n.Children {
		d = max(d, c.Depth())
	}
	return d + 1
}

// Function is the symbol of a frame without its offset
// ("__alloc_pages_noprof+0x2f1/0x340" → "__alloc_pages_noprof").
func Function(frame string) string {
	if i := strings.IndexByte(frame, '+'); i > 0 {
		return frame[:i]
	}
	return frame
}
