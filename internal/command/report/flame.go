package report

import (
	"fmt"
	"hash/fnv"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/stacks"
	"github.com/memtrace/memtrace/internal/present/text"
)

// Flame is a flame graph of failing kernel stacks, computed here: the
// root ("all") at the bottom, each frame as wide as the failures whose
// stack passes through it (exact in-kernel counts).
type Flame struct {
	Width, Height float64
	Frames        []Frame
	Total         uint64
}

// Frame is one node of the stack tree.
type Frame struct {
	X, Y, W float64
	Name    string // the whole frame, escaped
	Label   string // what fits in the box
	Count   uint64
	Share   string
	Fill    string
}

const (
	frameHeight = 17.0
	charWidth   = 6.6 // of the frames' 11px monospace font
)

func flame(aggs []event.AllocAggregate, thp bool) Flame {
	var rows []event.AllocAggregate
	for _, a := range aggs {
		if a.THPFallback == thp {
			rows = append(rows, a)
		}
	}
	root := stacks.Tree(rows, true)
	f := Flame{Width: reportWidth, Total: root.Count}
	if root.Count == 0 {
		return f
	}
	depth := root.Depth()
	f.Height = float64(depth)*frameHeight + 4
	var walk func(n *stacks.Node, x float64, level int)
	walk = func(n *stacks.Node, x float64, level int) {
		w := f.Width * float64(n.Count) / float64(root.Count)
		name := text.Escape(n.Frame)
		fr := Frame{X: x, Y: f.Height - float64(level+1)*frameHeight, W: w, Name: name, Count: n.Count,
			Share: fmt.Sprintf("%.2f%%", 100*float64(n.Count)/float64(root.Count)), Fill: frameColor(n.Frame, level == 0)}
		if fits := int((w - 6) / charWidth); fits >= 3 {
			r := []rune(name)
			if len(r) > fits {
				r = append(r[:fits-2], '.', '.')
			}
			fr.Label = string(r)
		}
		f.Frames = append(f.Frames, fr)
		cx := x
		for _, c := range n.Children {
			walk(c, cx, level+1)
			cx += f.Width * float64(c.Count) / float64(root.Count)
		}
	}
	walk(root, 0, 0)
	return f
}

// frameColor is a warm colour fixed by the function's name, so a function
// has the same colour in every graph.
func frameColor(frame string, root bool) string {
	if root {
		return "rgb(200,200,200)"
	}
	h := fnv.New32a()
	h.Write([]byte(stacks.Function(frame)))
	v := h.Sum32()
	return fmt.Sprintf("rgb(%d,%d,%d)", 205+v%50, 80+(v>>8)%130, 40+(v>>16)%50)
}
