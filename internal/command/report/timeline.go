package report

import (
	"fmt"
	"sort"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
)

// Timeline is the failures, stalls and huge-page outcomes per process
// over time: one row per process, one mark per event.
type Timeline struct {
	Width, Height, Left, Plot float64
	Rows                      []Row
	Marks                     []Mark
	Ticks                     []Tick
	Trigger                   *Tick
	Kinds                     []KV // marks by class, for the legend
}

// Row is one process of the timeline.
type Row struct {
	Y           float64
	Label, Full string
	Events      int
}

// clip shortens a label to n characters, the end replaced by "…".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Mark is one event: a tick for an instant, a bar for a stall.
type Mark struct {
	X, Y, W, H float64
	Class      string
	Count      uint64
	Title      string
}

const (
	reportWidth  = 1000.0
	rowHeight    = 18.0
	timelineLeft = 190.0
	maxRows      = 24
)

// markOf says how an event is drawn, "" for one the timeline leaves out
// (successful huge-page requests, extfrag: they are in their tables).
func markOf(ev *event.Event) (class string, dur time.Duration, count uint64, what string) {
	switch {
	case ev.AllocFailure != nil:
		a := ev.AllocFailure
		class = "failure"
		if a.THPFallback {
			class = "thp"
		}
		return class, 0, a.Count, fmt.Sprintf("order-%d %s allocation failure (count %d), %s", a.Order, a.GFP, a.Count, ev.Context)
	case ev.Reclaim != nil:
		r := ev.Reclaim
		d := time.Duration(r.DurationNs)
		return "stall", d, 1, fmt.Sprintf("%s stall %s, order %d, %d pages reclaimed", r.Kind, d.Round(time.Microsecond), r.Order, r.Reclaimed)
	case ev.Compaction != nil:
		c := ev.Compaction
		d := time.Duration(c.DurationNs)
		return "stall", d, 1, fmt.Sprintf("direct compaction %s, order %d, %s, %s", d.Round(time.Microsecond), c.Order, c.Priority, c.Outcome)
	case ev.Hugetlb != nil:
		h := ev.Hugetlb
		switch {
		case h.HugeRequest && !h.OK:
			return "huge-fail", 0, 1, fmt.Sprintf("%s of %d bytes on huge pages failed: %s", h.Call, h.Size, h.Errno)
		case h.AfterHugeFailure && h.OK:
			return "huge-fallback", 0, 1, fmt.Sprintf("%s of %d bytes without huge pages after a failed request", h.Call, h.Size)
		}
	case ev.WarnAlloc != nil:
		return "warn", 0, 1, fmt.Sprintf("warn_alloc: %s", ev.WarnAlloc.What)
	}
	return "", 0, 0, ""
}

func timeline(evs []event.Event, sp span, trig *time.Time) Timeline {
	tl := Timeline{Width: reportWidth, Left: timelineLeft, Plot: reportWidth - timelineLeft - 10}
	type proc struct {
		pid  uint32
		comm string
		n    int
	}
	procs := map[uint32]*proc{}
	for i := range evs {
		if c, _, _, _ := markOf(&evs[i]); c == "" {
			continue
		}
		p := procs[evs[i].Pid]
		if p == nil {
			p = &proc{pid: evs[i].Pid, comm: evs[i].Comm}
			procs[evs[i].Pid] = p
		}
		p.n++
	}
	order := make([]*proc, 0, len(procs))
	for _, p := range procs {
		order = append(order, p)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].n != order[j].n {
			return order[i].n > order[j].n
		}
		return order[i].pid < order[j].pid
	})
	rowOf := map[uint32]int{}
	for i, p := range order {
		if i == maxRows-1 && len(order) > maxRows {
			rest := 0
			for _, q := range order[i:] {
				rowOf[q.pid] = i
				rest += q.n
			}
			label := fmt.Sprintf("%d other processes", len(order)-i)
			tl.Rows = append(tl.Rows, Row{Label: label, Full: label, Events: rest})
			break
		}
		rowOf[p.pid] = i
		tl.Rows = append(tl.Rows, Row{Label: clip(task(p.pid, p.comm), 30), Full: task(p.pid, p.comm), Events: p.n})
	}
	top := 24.0
	for i := range tl.Rows {
		tl.Rows[i].Y = top + float64(i)*rowHeight
	}
	tl.Height = top + float64(max(len(tl.Rows), 1))*rowHeight + 24
	kinds := map[string]uint64{}
	for i := range evs {
		ev := &evs[i]
		class, dur, count, what := markOf(ev)
		if class == "" {
			continue
		}
		kinds[class]++
		row := rowOf[ev.Pid]
		end := tl.Left + tl.Plot*sp.frac(ev.Time)
		m := Mark{X: end - 1, W: 2, Y: top + float64(row)*rowHeight + 3, H: rowHeight - 6, Class: class, Count: count,
			Title: fmt.Sprintf("%s %s: %s", ev.Time.UTC().Format("15:04:05.000000"), task(ev.Pid, ev.Comm), text.Escape(what))}
		if dur > 0 {
			start := tl.Left + tl.Plot*sp.frac(ev.Time.Add(-dur))
			m.X, m.W = start, max(end-start, 2)
		}
		tl.Marks = append(tl.Marks, m)
	}
	for _, k := range []string{"failure", "thp", "stall", "huge-fail", "huge-fallback", "warn"} {
		if kinds[k] > 0 {
			tl.Kinds = append(tl.Kinds, KV{k, kinds[k]})
		}
	}
	tl.Ticks = sp.ticks(8, tl.Left, tl.Plot)
	if trig != nil {
		tl.Trigger = &Tick{Pos: tl.Left + tl.Plot*sp.frac(*trig), Label: "trigger " + trig.UTC().Format("15:04:05.000")}
	}
	return tl
}
