package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// stateView is one sample of the system state.
type stateView struct {
	sysstate.Snapshot
	Pressure *sysstate.Pressure
}

// statesOf returns the samples of an incident, or a capture's before and
// after snapshots.
func statesOf(in Input) []stateView {
	var out []stateView
	if in.Incident != nil {
		for _, s := range in.Incident.States {
			out = append(out, stateView{s.Snapshot, s.Pressure})
		}
		return out
	}
	for _, s := range []sysstate.Snapshot{in.Doc.Before, in.Doc.After} {
		if !s.Time.IsZero() {
			out = append(out, stateView{Snapshot: s})
		}
	}
	return out
}

// Chart is a line chart over the section's time span.
type Chart struct {
	Title, Unit           string
	Width, Height         float64
	Left, Plot, Top, Body float64
	Right, LegendX        float64
	Series                []Series
	YTicks, XTicks        []Tick
	Trigger               *Tick
	Samples               int
}

// Series is one line.
type Series struct {
	Name, Class, Points string
	Last                string
	LabelY              float64
	Swatch              string // the legend's line sample
}

// pageSize is the page size of x86-64, the only architecture memtrace's
// BPF objects are built for.
const pageSize = 4096

const (
	chartLeft   = 70.0
	chartHeight = 200.0
)

type line struct {
	name, class string
	value       func(s stateView) (float64, bool)
}

func chart(title, unit string, states []stateView, sp span, trig *time.Time, lines []line) Chart {
	c := Chart{Title: title, Unit: unit, Width: reportWidth, Height: chartHeight, Left: chartLeft, Top: 10,
		Plot: reportWidth - chartLeft - 190, Body: chartHeight - 40, Samples: len(states)}
	c.Right, c.LegendX = c.Left+c.Plot, c.Left+c.Plot+10
	top := 0.0
	for _, l := range lines {
		for _, s := range states {
			if v, ok := l.value(s); ok {
				top = max(top, v)
			}
		}
	}
	top = niceCeil(top)
	for _, l := range lines {
		var pts []string
		last := ""
		for _, s := range states {
			v, ok := l.value(s)
			if !ok {
				continue
			}
			x := c.Left + c.Plot*sp.frac(s.Time)
			y := c.Top + c.Body*(1-v/top)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			last = formatValue(v)
		}
		if len(pts) == 0 {
			continue
		}
		if len(pts) == 1 { // one sample: a short flat line, visible
			pts = append(pts, pts[0])
		}
		ly := c.Top + 8 + 16*float64(len(c.Series))
		c.Series = append(c.Series, Series{Name: l.name, Class: l.class, Points: strings.Join(pts, " "), Last: last,
			LabelY: ly, Swatch: fmt.Sprintf("%.1f,%.1f %.1f,%.1f", c.LegendX, ly, c.LegendX+18, ly)})
	}
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		c.YTicks = append(c.YTicks, Tick{Pos: c.Top + c.Body*(1-float64(i)/4), Label: formatValue(v)})
	}
	c.XTicks = sp.ticks(8, c.Left, c.Plot)
	if trig != nil {
		c.Trigger = &Tick{Pos: c.Left + c.Plot*sp.frac(*trig), Label: "trigger"}
	}
	return c
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatValue(v float64) string {
	if v == math.Trunc(v) || v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// zoneSum adds a zone field over every zone, in MiB.
func zoneSum(s stateView, f func(z sysstate.ZoneFree) uint64) (float64, bool) {
	if len(s.Buddy) == 0 {
		return 0, false
	}
	var pages uint64
	for _, z := range s.Buddy {
		pages += f(z)
	}
	return float64(pages*pageSize) / (1 << 20), true
}

func memoryChart(states []stateView, sp span, trig *time.Time) Chart {
	kb := func(f func(m sysstate.Memory) uint64) func(stateView) (float64, bool) {
		return func(s stateView) (float64, bool) {
			if s.Memory.MemTotalKB == 0 {
				return 0, false
			}
			return float64(f(s.Memory)) / 1024, true
		}
	}
	return chart("Free memory and watermarks", "MiB", states, sp, trig, []line{
		{"MemAvailable", "avail", kb(func(m sysstate.Memory) uint64 { return m.MemAvailableKB })},
		{"MemFree", "free", kb(func(m sysstate.Memory) uint64 { return m.MemFreeKB })},
		{"high watermark", "wm-high", func(s stateView) (float64, bool) {
			return zoneSum(s, func(z sysstate.ZoneFree) uint64 { return z.HighPages })
		}},
		{"low watermark", "wm-low", func(s stateView) (float64, bool) {
			return zoneSum(s, func(z sysstate.ZoneFree) uint64 { return z.LowPages })
		}},
		{"min watermark", "wm-min", func(s stateView) (float64, bool) {
			return zoneSum(s, func(z sysstate.ZoneFree) uint64 { return z.MinPages })
		}},
	})
}

func pressureChart(states []stateView, sp span, trig *time.Time) Chart {
	psi := func(f func(p *sysstate.Pressure) float64) func(stateView) (float64, bool) {
		return func(s stateView) (float64, bool) {
			if s.Pressure == nil {
				return 0, false
			}
			return f(s.Pressure), true
		}
	}
	return chart("Memory pressure (PSI)", "%", states, sp, trig, []line{
		{"some avg10", "psi-some", psi(func(p *sysstate.Pressure) float64 { return p.SomeAvg10 })},
		{"full avg10", "psi-full", psi(func(p *sysstate.Pressure) float64 { return p.FullAvg10 })},
	})
}

func hugePoolChart(states []stateView, sp span, trig *time.Time) Chart {
	pool := func(f func(m sysstate.Memory) uint64) func(stateView) (float64, bool) {
		return func(s stateView) (float64, bool) {
			if s.Memory.MemTotalKB == 0 {
				return 0, false
			}
			return float64(f(s.Memory)), true
		}
	}
	return chart("Default huge page pool", "pages", states, sp, trig, []line{
		{"HugePages_Total", "hp-total", pool(func(m sysstate.Memory) uint64 { return m.HugePagesTotal })},
		{"HugePages_Free", "hp-free", pool(func(m sysstate.Memory) uint64 { return m.HugePagesFree })},
		{"HugePages_Rsvd", "hp-rsvd", pool(func(m sysstate.Memory) uint64 { return m.HugePagesRsvd })},
	})
}

// Heatmap is the free blocks per order over time: a row per order, a
// column per sample, darker for more blocks (log scale).
type Heatmap struct {
	Width, Height, Left, Plot float64
	Cells                     []Cell
	Orders                    []Tick
	XTicks                    []Tick
	Trigger                   *Tick
}

// Cell is one order at one sample.
type Cell struct {
	X, Y, W, H float64
	Fill       string
	Title      string
}

func buddyHeatmap(states []stateView, sp span, trig *time.Time) Heatmap {
	h := Heatmap{Width: reportWidth, Left: chartLeft, Plot: reportWidth - chartLeft - 150}
	orders := 0
	for _, s := range states {
		for _, z := range s.Buddy {
			orders = max(orders, len(z.FreeBlocks))
		}
	}
	const cellH = 16.0
	h.Height = 10 + cellH*float64(max(orders, 1)) + 30
	var top float64
	sums := make([][]uint64, len(states))
	for i, s := range states {
		sums[i] = make([]uint64, orders)
		for _, z := range s.Buddy {
			for o, n := range z.FreeBlocks {
				sums[i][o] += n
			}
		}
		for _, n := range sums[i] {
			top = max(top, math.Log1p(float64(n)))
		}
	}
	for o := range orders {
		h.Orders = append(h.Orders, Tick{Pos: 10 + cellH*float64(orders-1-o) + cellH/2 + 4, Label: fmt.Sprintf("order %d", o)})
	}
	for i, s := range states {
		x := h.Left + h.Plot*sp.frac(s.Time)
		next := h.Left + h.Plot
		if i+1 < len(states) {
			next = h.Left + h.Plot*sp.frac(states[i+1].Time)
		}
		w := max(next-x, 1)
		for o := range orders {
			n := sums[i][o]
			shade := 0.0
			if top > 0 {
				shade = math.Log1p(float64(n)) / top
			}
			// White (none) to dark blue (the most of any cell).
			r, g, b := 255-int(shade*225), 255-int(shade*170), 255-int(shade*75)
			h.Cells = append(h.Cells, Cell{X: x, Y: 10 + cellH*float64(orders-1-o), W: w, H: cellH,
				Fill:  fmt.Sprintf("rgb(%d,%d,%d)", r, g, b),
				Title: fmt.Sprintf("%s order %d: %d free blocks", s.Time.UTC().Format("15:04:05.000"), o, n)})
		}
	}
	h.XTicks = sp.ticks(8, h.Left, h.Plot)
	if trig != nil {
		h.Trigger = &Tick{Pos: h.Left + h.Plot*sp.frac(*trig), Label: "trigger"}
	}
	return h
}
