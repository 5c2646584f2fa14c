package metrics

import (
	"log/slog"
	"sort"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/promtext"
	"github.com/memtrace/memtrace/internal/present/view"
)

// Descriptions of the self-metrics: how much of what happened memtrace saw.
var (
	seenDesc = promtext.NewDesc(namespace+"_events_seen_total",
		"Events that passed the filters in the kernel, per signal.", []string{"signal"}, nil)
	lostDesc = promtext.NewDesc(namespace+"_events_lost_total",
		"Events dropped because a ring buffer was full. Allocation and extfrag counts stay exact (they are counted in the kernel); huge-page requests lost here are missing from the counters.", []string{"signal"}, nil)
	sampledDesc = promtext.NewDesc(namespace+"_events_sampled_total",
		"Events not streamed by design (sampling); they are in the exact counts.", []string{"signal"}, nil)
	mapFullDesc = promtext.NewDesc(namespace+"_map_full_total",
		"Events that found an in-kernel aggregation or pairing map full: counts are missing for them.", []string{"signal"}, nil)
	rateDesc = promtext.NewDesc(namespace+"_events_per_second",
		"Events seen per second over the last sync interval, per signal.", []string{"signal"}, nil)
	attachedDesc = promtext.NewDesc(namespace+"_probe_attached",
		"1 for the hook each signal uses, 0 for hooks that were tried or skipped.", []string{"signal", "hook"}, nil)
	decodeErrDesc = promtext.NewDesc(namespace+"_decode_errors_total",
		"Records from the kernel that could not be decoded (never expected).", nil, nil)
	readErrDesc = promtext.NewDesc(namespace+"_read_errors_total",
		"Failed reads of the in-kernel aggregates or counters.", []string{"source"}, nil)
	forgottenDesc = promtext.NewDesc(namespace+"_aged_out_processes_total",
		"Processes whose in-kernel aggregates were deleted after being idle (their counts stay in the counters).", nil, nil)
	seriesDesc = promtext.NewDesc(namespace+"_series",
		"Series a counter family holds, the folded one included.", []string{"metric"}, nil)
	foldedDesc = promtext.NewDesc(namespace+"_folded_label_sets_total",
		"Distinct high-cardinality label sets (comm, container) counted under \"other\" because the family reached its series limit; stops growing at 65536.", []string{"metric"}, nil)
	limitDesc = promtext.NewDesc(namespace+"_series_limit",
		"The series limit of each counter family (0: none).", nil, nil)
)

// Collect implements promtext.Collector: it syncs, then reports.
func (e *Exporter) Collect(ch chan<- promtext.Metric) {
	if err := e.Sync(); err != nil {
		slog.Warn("memtrace: reading in-kernel aggregates", "err", err)
	}
	for _, f := range e.families() {
		f.collect(ch)
		n, folded := f.counts()
		ch <- promtext.MustNewConstMetric(seriesDesc, promtext.GaugeValue, float64(n), f.name)
		ch <- promtext.MustNewConstMetric(foldedDesc, promtext.CounterValue, float64(folded), f.name)
	}
	ch <- promtext.MustNewConstMetric(limitDesc, promtext.GaugeValue, float64(e.opts.MaxSeries))
	e.collectStats(ch)
	for _, h := range e.src.Hooks() {
		if h.Attached {
			ch <- promtext.MustNewConstMetric(attachedDesc, promtext.GaugeValue, 1, string(h.Signal), h.Hook)
		}
		for _, r := range h.Rejected {
			if r.Hook == h.Hook {
				continue
			}
			ch <- promtext.MustNewConstMetric(attachedDesc, promtext.GaugeValue, 0, string(h.Signal), r.Hook)
		}
	}
	ch <- promtext.MustNewConstMetric(decodeErrDesc, promtext.CounterValue, float64(e.src.DecodeErrors()))
}

func (e *Exporter) collectStats(ch chan<- promtext.Metric) {
	stats, err := e.src.Stats()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.readErrs["stats"]++
		slog.Warn("memtrace: reading in-kernel counters", "err", err)
	}
	now := e.opts.Now()
	sigs := make([]event.Signal, 0, len(stats))
	for s := range stats {
		sigs = append(sigs, s)
	}
	sort.Slice(sigs, func(i, j int) bool { return sigs[i] < sigs[j] })
	for _, sig := range sigs {
		st := stats[sig]
		s := string(sig)
		ch <- promtext.MustNewConstMetric(seenDesc, promtext.CounterValue, float64(st.Seen), s)
		ch <- promtext.MustNewConstMetric(lostDesc, promtext.CounterValue, float64(st.Lost), s)
		ch <- promtext.MustNewConstMetric(sampledDesc, promtext.CounterValue, float64(st.Sampled), s)
		ch <- promtext.MustNewConstMetric(mapFullDesc, promtext.CounterValue, float64(st.MapFull), s)
		// The rate is over the time since the previous window closed; a
		// window shorter than a second (scrapes close together) is kept
		// open so the value is not noise.
		w := e.rate[sig]
		switch {
		case !w.ok:
			w = rateWindow{seen: st.Seen, at: now, ok: true}
		case now.Sub(w.at).Seconds() >= 1:
			w.rate = float64(growth(w.seen, st.Seen)) / now.Sub(w.at).Seconds()
			w.seen, w.at = st.Seen, now
		}
		e.rate[sig] = w
		ch <- promtext.MustNewConstMetric(rateDesc, promtext.GaugeValue, w.rate, s)
	}
	for _, f := range view.Families() {
		if f.Rows != nil {
			ch <- promtext.MustNewConstMetric(readErrDesc, promtext.CounterValue, e.readErrs[string(f.Signal)], string(f.Signal))
		}
	}
	ch <- promtext.MustNewConstMetric(readErrDesc, promtext.CounterValue, e.readErrs["stats"], "stats")
	ch <- promtext.MustNewConstMetric(forgottenDesc, promtext.CounterValue, e.forgotten)
}
