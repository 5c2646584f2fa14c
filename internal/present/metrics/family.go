package metrics

import (
	"hash/maphash"
	"sort"
	"strings"
	"sync"

	"github.com/memtrace/memtrace/internal/present/promtext"
)

// Folded is the value every high-cardinality label takes in the series
// that collects what the series limit kept out.
const Folded = "other"

// maxFoldedTracked bounds the set that counts distinct folded label sets:
// past it the count stops growing (and says so in its help text) rather
// than the exporter's memory.
const maxFoldedTracked = 1 << 16

// family is one counter metric with Go-side totals. Its last labels are
// high-cardinality ones (comm, container): once the family holds limit
// series, a new combination is folded into the series whose
// high-cardinality labels all read "other", and the distinct folded
// combinations are counted. Series are never deleted: Prometheus counters
// must not go back, and a process that stopped is still history.
type family struct {
	name string // short name for self-metrics ("page_alloc_failures")
	// histogram: the series are histograms (observe), not counters (add).
	histogram bool
	desc      *promtext.Desc
	nLow      int // labels [0, nLow) are low-cardinality
	nAll      int
	limit     int // 0: no limit
	seed      maphash.Seed
	mu        sync.Mutex
	series    map[string]*series
	folded    map[uint64]struct{}
}

type series struct {
	values []string
	total  float64
	hist   *histSeries
}

func newFamily(name, fqName, help string, low, high []string, limit int) *family {
	labels := append(append([]string(nil), low...), high...)
	return &family{
		name:   name,
		desc:   promtext.NewDesc(fqName, help, labels, nil),
		nLow:   len(low),
		nAll:   len(labels),
		limit:  limit,
		seed:   maphash.MakeSeed(),
		series: map[string]*series{},
		folded: map[uint64]struct{}{},
	}
}

// add adds delta to the series of values (low-cardinality values first),
// folding it when the family is full. It panics on a wrong number of
// values, like Prometheus' client vectors: that is a bug, not input.
func (f *family) add(values []string, delta float64) {
	if delta <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seriesFor(values).total += delta
}

// seriesFor returns the series of values, or the folded one when the
// family is full; f.mu is held.
func (f *family) seriesFor(values []string) *series {
	if len(values) != f.nAll {
		panic("metrics: " + f.name + ": wrong number of label values")
	}
	key := strings.Join(values, "\xff")
	s, ok := f.series[key]
	if !ok && f.limit > 0 && len(f.series) >= f.limit && f.nAll > f.nLow {
		f.noteFolded(values[f.nLow:])
		values = append(values[:f.nLow:f.nLow], foldedValues(f.nAll-f.nLow)...)
		key = strings.Join(values, "\xff")
		s, ok = f.series[key]
	}
	if !ok {
		s = &series{values: append([]string(nil), values...)}
		f.series[key] = s
	}
	return s
}

func (f *family) noteFolded(high []string) {
	if len(f.folded) >= maxFoldedTracked {
		return
	}
	var h maphash.Hash
	h.SetSeed(f.seed)
	for _, v := range high {
		h.WriteString(v)
		h.WriteByte(0xff)
	}
	f.folded[h.Sum64()] = struct{}{}
}

func foldedValues(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = Folded
	}
	return out
}

// collect sends every series, in a stable order (tests read them).
func (f *family) collect(ch chan<- promtext.Metric) {
	f.mu.Lock()
	keys := make([]string, 0, len(f.series))
	for k := range f.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ms := make([]promtext.Metric, 0, len(keys))
	for _, k := range keys {
		s := f.series[k]
		if f.histogram {
			if s.hist != nil {
				ms = append(ms, s.hist.metric(f.desc, s.values))
			}
			continue
		}
		ms = append(ms, promtext.MustNewConstMetric(f.desc, promtext.CounterValue, s.total, s.values...))
	}
	f.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
}

// counts returns the number of series and of distinct folded label sets.
func (f *family) counts() (series, folded int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.series), len(f.folded)
}
