// Package promtext writes Prometheus metrics in the text exposition format
// (version 0.0.4), which every Prometheus scrapes. memtrace's collectors
// build constant metrics at scrape time, the one pattern they use; this
// package does only that. The client library it replaces linked 2.4 MB of
// code and tables (protobuf among them) into every memtrace command, whose
// pages the kernel mapped in at start whether serve ran or not.
package promtext

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// ValueType is a sample's metric type.
type ValueType int

const (
	CounterValue ValueType = iota + 1
	GaugeValue
	histogramValue
)

func (t ValueType) String() string {
	switch t {
	case CounterValue:
		return "counter"
	case GaugeValue:
		return "gauge"
	case histogramValue:
		return "histogram"
	}
	return "untyped"
}

// A Desc describes a metric family: its name, help text, variable label
// names and constant labels.
type Desc struct {
	name   string
	help   string
	labels []string
	consts []labelPair // sorted by name
}

type labelPair struct{ name, value string }

// NewDesc returns a family's description. A name or label name that
// Prometheus would refuse is a programming error: it panics.
func NewDesc(name, help string, labels []string, constLabels map[string]string) *Desc {
	if !validName(name, true) {
		panic(fmt.Sprintf("promtext: invalid metric name %q", name))
	}
	seen := map[string]bool{}
	for _, l := range labels {
		if !validName(l, false) || strings.HasPrefix(l, "__") || l == "le" || seen[l] {
			panic(fmt.Sprintf("promtext: %s: invalid or repeated label name %q", name, l))
		}
		seen[l] = true
	}
	d := &Desc{name: name, help: help, labels: slices.Clone(labels)}
	for n, v := range constLabels {
		if !validName(n, false) || seen[n] {
			panic(fmt.Sprintf("promtext: %s: invalid or repeated label name %q", name, n))
		}
		d.consts = append(d.consts, labelPair{n, validValue(v)})
	}
	slices.SortFunc(d.consts, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	return d
}

// Name is the family's name.
func (d *Desc) Name() string { return d.name }

// validName: [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, without ':' for
// label names.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || colon && r == ':' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// validValue makes a label value valid UTF-8, as the format requires;
// callers escape untrusted text first, so this is a last line of defence,
// not a way to render it.
func validValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// A Metric is one sample (a counter or gauge) or one histogram series.
type Metric struct {
	desc   *Desc
	typ    ValueType
	labels []labelPair // sorted by name, constant labels included
	value  float64
	// Histograms: cumulative counts per upper bound, ascending, without
	// +Inf (the count is +Inf's bucket).
	bounds []float64
	counts []uint64
	count  uint64
}

// MustNewConstMetric returns a counter or gauge sample. Label values in
// the order of the Desc's label names; a wrong number is a programming
// error and panics.
func MustNewConstMetric(d *Desc, t ValueType, v float64, labelValues ...string) Metric {
	if t != CounterValue && t != GaugeValue {
		panic("promtext: " + d.name + ": a sample is a counter or a gauge")
	}
	if t == CounterValue && (v < 0 || math.IsNaN(v)) {
		panic(fmt.Sprintf("promtext: %s: counter value %v", d.name, v))
	}
	return Metric{desc: d, typ: t, labels: d.pairs(labelValues), value: v}
}

// MustNewConstHistogram returns a histogram series from its count, sum
// and cumulative bucket counts by upper bound (+Inf is the count).
func MustNewConstHistogram(d *Desc, count uint64, sum float64, buckets map[float64]uint64, labelValues ...string) Metric {
	m := Metric{desc: d, typ: histogramValue, labels: d.pairs(labelValues), value: sum, count: count}
	for b := range buckets {
		if !math.IsInf(b, +1) {
			m.bounds = append(m.bounds, b)
		}
	}
	slices.Sort(m.bounds)
	for _, b := range m.bounds {
		m.counts = append(m.counts, buckets[b])
	}
	return m
}

func (d *Desc) pairs(values []string) []labelPair {
	if len(values) != len(d.labels) {
		panic(fmt.Sprintf("promtext: %s: %d label values for %d labels", d.name, len(values), len(d.labels)))
	}
	out := make([]labelPair, 0, len(values)+len(d.consts))
	for i, v := range values {
		out = append(out, labelPair{d.labels[i], validValue(v)})
	}
	out = append(out, d.consts...)
	slices.SortFunc(out, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })
	return out
}

// A Collector sends its metrics at every scrape.
type Collector interface {
	Collect(ch chan<- Metric)
}

// CollectorFunc is a Collector of one function.
type CollectorFunc func(ch chan<- Metric)

// Collect calls f.
func (f CollectorFunc) Collect(ch chan<- Metric) { f(ch) }
