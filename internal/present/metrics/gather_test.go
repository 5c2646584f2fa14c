package metrics

import (
	"bytes"
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/memtrace/memtrace/internal/present/promtext"
)

// gatherer serves what a registry of cs writes, read back by Prometheus'
// own text parser: the tests check the exposition a scrape gets, and
// client_golang's linter and types stay usable on it (in tests only; the
// binary does not link them).
func gatherer(cs ...promtext.Collector) prometheus.Gatherer {
	reg := promtext.NewRegistry(cs...)
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var b bytes.Buffer
		if err := reg.Write(&b); err != nil {
			return nil, err
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(&b)
		if err != nil {
			return nil, err
		}
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, name := range slices.Sorted(maps.Keys(fams)) {
			out = append(out, fams[name])
		}
		return out, nil
	})
}
