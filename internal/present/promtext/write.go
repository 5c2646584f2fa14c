package promtext

import (
	"bufio"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// A Registry holds the collectors one endpoint serves.
type Registry struct {
	collectors []Collector

	mu     sync.Mutex
	warned map[string]bool // inconsistencies already logged, once each
}

// NewRegistry returns a registry of cs.
func NewRegistry(cs ...Collector) *Registry {
	return &Registry{collectors: cs, warned: map[string]bool{}}
}

// family is one name's metrics at a scrape.
type family struct {
	desc    *Desc
	typ     ValueType
	metrics []Metric
}

// Gather runs every collector (concurrently: each may read the kernel)
// and returns the families sorted by name, each series sorted by its
// labels. A second series of the same labels, or a family sent with two
// types or help texts, is dropped and logged once: it is a bug, and the
// rest of the scrape is still worth having.
func (r *Registry) Gather() []family {
	ch := make(chan Metric, 256)
	var wg sync.WaitGroup
	for _, c := range r.collectors {
		wg.Go(func() { c.Collect(ch) })
	}
	go func() { wg.Wait(); close(ch) }()
	byName := map[string]*family{}
	seen := map[string]bool{}
	for m := range ch {
		f := byName[m.desc.name]
		if f == nil {
			f = &family{desc: m.desc, typ: m.typ}
			byName[m.desc.name] = f
		}
		if f.typ != m.typ || f.desc.help != m.desc.help {
			r.warn(m.desc.name, "sent with two types or help texts")
			continue
		}
		key := m.desc.name + "\xff" + seriesKey(m.labels)
		if seen[key] {
			var b strings.Builder
			writeLabels(&b, m.labels)
			r.warn(key, "a series sent twice: "+m.desc.name+"{"+b.String()+"}")
			continue
		}
		seen[key] = true
		f.metrics = append(f.metrics, m)
	}
	out := make([]family, 0, len(byName))
	for _, f := range byName {
		slices.SortFunc(f.metrics, func(a, b Metric) int { return compareLabels(a.labels, b.labels) })
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b family) int { return strings.Compare(a.desc.name, b.desc.name) })
	return out
}

func (r *Registry) warn(key, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.warned[key] && len(r.warned) < 1000 {
		r.warned[key] = true
		slog.Warn("memtrace: metrics: dropped: " + msg)
	}
}

func seriesKey(ls []labelPair) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.name)
		b.WriteByte(0)
		b.WriteString(l.value)
		b.WriteByte(0)
	}
	return b.String()
}

func compareLabels(a, b []labelPair) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i].name, b[i].name); c != 0 {
			return c
		}
		if c := strings.Compare(a[i].value, b[i].value); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// Write gathers and writes the text exposition format to w.
func (r *Registry) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range r.Gather() {
		writeFamily(bw, f)
	}
	return bw.Flush()
}

func writeFamily(w *bufio.Writer, f family) {
	name := f.desc.name
	w.WriteString("# HELP " + name + " ")
	w.WriteString(helpEscaper.Replace(f.desc.help))
	w.WriteString("\n# TYPE " + name + " " + f.typ.String() + "\n")
	for _, m := range f.metrics {
		if m.typ != histogramValue {
			writeSample(w, name, m.labels, "", 0, formatFloat(m.value))
			continue
		}
		for i, b := range m.bounds {
			writeSample(w, name+"_bucket", m.labels, "le", b, strconv.FormatUint(m.counts[i], 10))
		}
		writeSample(w, name+"_bucket", m.labels, "le", math.Inf(+1), strconv.FormatUint(m.count, 10))
		writeSample(w, name+"_sum", m.labels, "", 0, formatFloat(m.value))
		writeSample(w, name+"_count", m.labels, "", 0, strconv.FormatUint(m.count, 10))
	}
}

// writeSample writes one line; extra, when set, is one more label (le)
// written last, as Prometheus' own client does.
func writeSample(w *bufio.Writer, name string, ls []labelPair, extra string, extraValue float64, value string) {
	w.WriteString(name)
	if len(ls) > 0 || extra != "" {
		w.WriteByte('{')
		writeLabels(w, ls)
		if extra != "" {
			if len(ls) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(extra + `="` + formatFloat(extraValue) + `"`)
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(value)
	w.WriteByte('\n')
}

// writeLabels writes a="x",b="y", escaped as in the exposition.
func writeLabels(w interface {
	WriteString(string) (int, error)
	WriteByte(byte) error
}, ls []labelPair) {
	for i, l := range ls {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(l.name + `="`)
		w.WriteString(valueEscaper.Replace(l.value))
		w.WriteByte('"')
	}
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

// formatFloat writes a value as Prometheus' own client does: the shortest
// representation that reads back the same, and +Inf, -Inf, NaN.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, +1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
