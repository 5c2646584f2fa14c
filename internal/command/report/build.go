package report

import (
	"fmt"
	"sort"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/present/text"
)

// Page is the whole report.
type Page struct {
	Version, Generated string
	Sections           []Section
}

// Section is one input file.
type Section struct {
	ID, Name, Kind               string
	Host, Kernel, Window, Stop   string
	Trigger                      *TriggerView
	Later                        []TriggerView
	Held                         []KV
	Timeline                     Timeline
	Memory, Pressure, HugePool   Chart
	Buddy                        Heatmap
	Huge                         []HugeRow
	THPFallbacks                 uint64
	Flame, THPFlame              Flame
	Hooks                        []HookRow
	Stats                        []StatRow
	LeftOut, Dropped, DecodeErrs uint64
	Warnings                     []string
	Processes                    []ProcRow
	MoreProcesses                int
}

// TriggerView is a trigger as shown.
type TriggerView struct{ Kind, Time, Reason, Task string }

// KV is a name and a number.
type KV struct {
	Key   string
	Value uint64
}

// HugeRow is one process's huge-page requests.
type HugeRow struct {
	Task                                    string
	Requests, Failures, Fallbacks, THP, Out uint64
	Bytes                                   string
}

// HookRow is one signal's hook.
type HookRow struct {
	Signal, Hook, Note string
	Attached           bool
	Rejected           []string
}

// StatRow is one signal's counters.
type StatRow struct {
	Signal                      string
	Seen, Lost, Sampled, MapFul uint64
}

// ProcRow is one process of the roll-up.
type ProcRow struct {
	Task                                          string
	Failures, Atomic, Extfrag, HugeReq, HugeFails uint64
	Orders                                        string
}

// maxProcesses bounds the roll-up table.
const maxProcesses = 30

// task names a process for display: escaped (text.Escape), then
// html/template escapes it for HTML.
func task(pid uint32, comm string) string {
	return fmt.Sprintf("%s (%d)", text.Escape(comm), pid)
}

func build(i int, in Input) Section {
	doc := in.Doc
	s := Section{
		ID: fmt.Sprintf("f%d", i), Name: text.Escape(in.Name), Kind: "capture",
		Host:    text.Escape(doc.Host.Hostname),
		Kernel:  text.Escape(doc.Host.KernelRelease),
		Stop:    text.Escape(doc.StopReason),
		Window:  fmt.Sprintf("%s to %s (%s)", doc.Start.UTC().Format(time.RFC3339), doc.End.UTC().Format(time.RFC3339), doc.End.Sub(doc.Start).Round(time.Millisecond)),
		LeftOut: doc.EventsLeftOut, DecodeErrs: doc.DecodeErrors,
	}
	for _, w := range doc.Warnings {
		s.Warnings = append(s.Warnings, text.Escape(w))
	}
	states := statesOf(in)
	span := spanOf(doc, states)
	var trig *time.Time
	if inc := in.Incident; inc != nil {
		s.Kind = "incident"
		s.Dropped = inc.EventsDropped
		t := inc.Trigger
		s.Trigger = triggerView(t.Kind, t.Time, t.Reason, t.Pid, t.Comm)
		tt := t.Time
		trig = &tt
		for _, l := range inc.Later {
			s.Later = append(s.Later, *triggerView(l.Kind, l.Time, l.Reason, l.Pid, l.Comm))
		}
		for k, v := range inc.Held {
			s.Held = append(s.Held, KV{text.Escape(k), v})
		}
		sort.Slice(s.Held, func(a, b int) bool { return s.Held[a].Key < s.Held[b].Key })
	}
	s.Timeline = timeline(doc.Events, span, trig)
	s.Memory = memoryChart(states, span, trig)
	s.Buddy = buddyHeatmap(states, span, trig)
	s.Pressure = pressureChart(states, span, trig)
	s.HugePool = hugePoolChart(states, span, trig)
	s.Huge, s.THPFallbacks = hugeRows(doc)
	s.Flame = flame(doc.AllocFailures, false)
	s.THPFlame = flame(doc.AllocFailures, true)
	s.Hooks, s.Stats = hooks(doc)
	for i, p := range doc.Processes {
		if i == maxProcesses {
			s.MoreProcesses = len(doc.Processes) - i
			break
		}
		orders := ""
		for j, o := range p.AllocOrders {
			if j > 0 {
				orders += ","
			}
			orders += fmt.Sprint(o)
		}
		s.Processes = append(s.Processes, ProcRow{Task: task(p.Pid, p.Comm), Failures: p.AllocFailures, Atomic: p.AtomicFailures,
			Extfrag: p.ExtfragEvents, HugeReq: p.HugetlbRequests, HugeFails: p.HugetlbFailures, Orders: orders})
	}
	return s
}

func triggerView(kind string, t time.Time, reason string, pid uint32, comm string) *TriggerView {
	v := &TriggerView{Kind: text.Escape(kind), Time: t.UTC().Format("15:04:05.000"), Reason: text.Escape(reason)}
	if pid != 0 || comm != "" {
		v.Task = task(pid, comm)
	}
	return v
}

func hugeRows(doc *capture.Document) ([]HugeRow, uint64) {
	rows := map[uint32]*HugeRow{}
	get := func(pid uint32, comm string) *HugeRow {
		r := rows[pid]
		if r == nil {
			r = &HugeRow{Task: task(pid, comm)}
			rows[pid] = r
		}
		return r
	}
	var bytes = map[uint32]uint64{}
	for _, p := range doc.Processes {
		if p.HugetlbRequests+p.HugetlbFallbacks == 0 {
			continue
		}
		r := get(p.Pid, p.Comm)
		r.Requests, r.Failures, r.Fallbacks = p.HugetlbRequests, p.HugetlbFailures, p.HugetlbFallbacks
		bytes[p.Pid] = p.HugetlbBytes
	}
	var thp uint64
	for _, a := range doc.AllocFailures {
		if a.THPFallback {
			get(a.Pid, a.Comm).THP += a.Count
			thp += a.Count
		}
	}
	var out []HugeRow
	for pid, r := range rows {
		r.Bytes = text.Bytes(bytes[pid], 1)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Failures+a.Fallbacks+a.THP != b.Failures+b.Fallbacks+b.THP {
			return a.Failures+a.Fallbacks+a.THP > b.Failures+b.Fallbacks+b.THP
		}
		return a.Task < b.Task
	})
	return out, thp
}

func hooks(doc *capture.Document) ([]HookRow, []StatRow) {
	var hs []HookRow
	for _, h := range doc.Hooks {
		r := HookRow{Signal: text.Escape(string(h.Signal)), Hook: text.Escape(h.Hook), Note: text.Escape(h.Note), Attached: h.Attached}
		for _, a := range h.Rejected {
			r.Rejected = append(r.Rejected, text.Escape(a.Hook+": "+a.Reason))
		}
		for _, c := range h.Companions {
			state := "attached"
			if !c.Attached {
				state = "not attached: " + c.Reason
			}
			r.Rejected = append(r.Rejected, text.Escape("companion "+c.Hook+": "+state))
		}
		hs = append(hs, r)
	}
	var ss []StatRow
	for sig, st := range doc.Stats {
		ss = append(ss, StatRow{Signal: text.Escape(string(sig)), Seen: st.Seen, Lost: st.Lost, Sampled: st.Sampled, MapFul: st.MapFull})
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].Signal < ss[j].Signal })
	return hs, ss
}

// span is the time the section's charts share.
type span struct{ t0, t1 time.Time }

func spanOf(doc *capture.Document, states []stateView) span {
	s := span{doc.Start, doc.End}
	widen := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if s.t0.IsZero() || t.Before(s.t0) {
			s.t0 = t
		}
		if t.After(s.t1) {
			s.t1 = t
		}
	}
	for _, st := range states {
		widen(st.Time)
	}
	for _, ev := range doc.Events {
		widen(ev.Time)
	}
	if !s.t1.After(s.t0) {
		s.t1 = s.t0.Add(time.Second)
	}
	return s
}

// frac is where t falls in the span, 0 to 1.
func (s span) frac(t time.Time) float64 {
	f := float64(t.Sub(s.t0)) / float64(s.t1.Sub(s.t0))
	return min(max(f, 0), 1)
}

// ticks are about n time labels across the span.
func (s span) ticks(n int, x0, w float64) []Tick {
	total := s.t1.Sub(s.t0)
	step := time.Second
	for _, c := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour} {
		step = c
		if total/c <= time.Duration(n) {
			break
		}
	}
	var out []Tick
	for t := s.t0.Truncate(step); !t.After(s.t1); t = t.Add(step) {
		if t.Before(s.t0) {
			continue
		}
		out = append(out, Tick{Pos: x0 + w*s.frac(t), Label: t.UTC().Format("15:04:05")})
	}
	return out
}

// Tick is an axis label at a position.
type Tick struct {
	Pos   float64
	Label string
}
