package metrics

import (
	"log/slog"
	"sync"
	"time"

	"github.com/memtrace/memtrace/internal/present/promtext"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
)

// DemandCollector reports the atomic demand a live meter measures: pages
// allocated by requests that cannot sleep, which vm.min_free_kbytes must
// cover, in bytes.
type DemandCollector struct {
	read func() (demand.Reading, bool)

	mu     sync.Mutex
	logged bool
}

// NewDemandCollector reads a meter, e.g. (*demand.Live).Read, which
// keeps its recent peaks for the window the help texts name.
func NewDemandCollector(read func() (demand.Reading, bool)) *DemandCollector {
	return &DemandCollector{read: read}
}

// PeakWindow is how far back memtrace_atomic_demand_peak_bytes looks
// (demand.Meter.Keep): longer than any scrape interval, so no burst falls
// between two scrapes.
const PeakWindow = time.Minute

var (
	demandDesc = promtext.NewDesc(namespace+"_atomic_demand_bytes_total",
		"Bytes allocated by requests that cannot sleep (no __GFP_DIRECT_RECLAIM), successes and failures, counted per CPU in the kernel. gfp: high (__GFP_HIGH, GFP_ATOMIC: may go under the min watermark, to 3/8 of it), other (GFP_NOWAIT, THP faults without reclaim: stop at min).",
		[]string{"gfp"}, nil)
	demandPeakDesc = promtext.NewDesc(namespace+"_atomic_demand_peak_bytes",
		"The largest atomic demand in one window (100ms or 1s) during the last minute, read every 100 ms. vm.min_free_kbytes must cover a burst: atomic requests may use 5/8 of the min watermark that others may not, so 1.6 times the gfp=\"high\" 100ms peak should stay under memtrace_vm_min_free_bytes (memtrace doctor --measure sizes it).",
		[]string{"window", "gfp"}, nil)
	demandErrDesc = promtext.NewDesc(namespace+"_atomic_demand_read_error",
		"1 when the atomic demand could no longer be read (the values are then frozen), else 0.", nil, nil)
)

// Collect implements promtext.Collector; it reports nothing when the
// session counts no atomic demand.
func (c *DemandCollector) Collect(ch chan<- promtext.Metric) {
	r, ok := c.read()
	if !ok {
		return
	}
	failed := 0.0
	if r.Err != nil {
		failed = 1
		c.mu.Lock()
		if !c.logged {
			slog.Warn("memtrace: reading atomic demand", "err", r.Err)
			c.logged = true
		}
		c.mu.Unlock()
	}
	ch <- promtext.MustNewConstMetric(demandErrDesc, promtext.GaugeValue, failed)
	ch <- promtext.MustNewConstMetric(demandDesc, promtext.CounterValue, pageBytes(r.Summary.Total.HighPages), "high")
	ch <- promtext.MustNewConstMetric(demandDesc, promtext.CounterValue, pageBytes(r.Summary.Total.OtherPages), "other")
	for _, w := range []struct {
		name  string
		peaks demand.Peaks
	}{{"100ms", r.RecentInterval}, {"1s", r.RecentSecond}} {
		for _, p := range []struct {
			gfp  string
			peak demand.Peak
		}{{"high", w.peaks.High}, {"other", w.peaks.Other}, {"all", w.peaks.Total}} {
			ch <- promtext.MustNewConstMetric(demandPeakDesc, promtext.GaugeValue, pageBytes(p.peak.Pages), w.name, p.gfp)
		}
	}
}
