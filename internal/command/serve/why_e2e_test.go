package serve

import (
	"errors"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// TestPrometheusScrapesStalls: serve with every signal, a real Prometheus
// scraping it and evaluating deploy/prometheus/rules.yaml, real memcg
// reclaim and direct compaction from named processes. The stall counters
// and histograms Prometheus stores hold exactly what tracefs counted, the
// histograms answer histogram_quantile, the stall-time recording rule
// sees them, and the atomic demand and zone gauges are there.
func TestPrometheusScrapesStalls(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	cfg := loader.DefaultConfig()
	cfg.Signals = event.AllSignals
	target := startServeWith(t, cfg)
	prom := startPrometheusWith(t, target, "../../../deploy/prometheus/rules.yaml")
	prom.waitFor(t, `up{job="memtrace"}`, 1)
	const reclComm, compComm = "mt-prom-recl", "mt-prom-comp"

	rec, err := provoke.MemcgReclaim(provoke.WithComm(reclComm))
	if err == nil {
		// Again once Prometheus has scraped the first round: a series
		// that first appears already grown has no increase for rate()
		// to see, so the recording rule below needs a second one.
		prom.waitFor(t, `sum(memtrace_reclaim_stalls_total{comm="`+reclComm+`",kind="memcg_reclaim"})`, float64(rec.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"]))
		var again provoke.StallReport
		if again, err = provoke.MemcgReclaim(provoke.WithComm(reclComm)); err == nil {
			for k, v := range again.Counts {
				rec.Counts[k] += v
			}
		}
	}
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		t.Logf("memcg reclaim not provoked: %v", err)
	case err != nil:
		t.Fatal(err)
	default:
		n := float64(rec.Counts["vmscan:mm_vmscan_memcg_reclaim_begin"])
		sel := `{comm="` + reclComm + `",kind="memcg_reclaim"}`
		prom.waitFor(t, `sum(memtrace_reclaim_stalls_total`+sel+`)`, n)
		prom.waitFor(t, `sum(memtrace_reclaim_stall_seconds_count`+sel+`)`, n)
		prom.waitFor(t, `sum(memtrace_reclaim_stall_seconds_bucket{comm="`+reclComm+`",kind="memcg_reclaim",le="+Inf"})`, n)
		sum := prom.query(t, `sum(memtrace_reclaim_stall_seconds_sum`+sel+`)`)
		p99 := prom.query(t, `histogram_quantile(0.99, sum by (le) (memtrace_reclaim_stall_seconds_bucket`+sel+`))`)
		if len(sum) != 1 || sum[0].Value <= 0 || len(p99) != 1 || !(p99[0].Value > 0) {
			t.Errorf("stall time %+v, p99 %+v", sum, p99)
		} else {
			t.Logf("memcg reclaim of %s: %v stalls (tracefs), %.3fs in all, p99 under %gs", reclComm, n, sum[0].Value, p99[0].Value)
		}
		// The recording rule of the stall-time alert sees them (its rate
		// needs two scrapes of the grown counter).
		waitPositive(t, prom, `instance_kind:memtrace_stall_seconds:rate5m{kind="memcg_reclaim"}`)
	}

	comp, err := provoke.Compaction(3, provoke.WithComm(compComm))
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		t.Logf("compaction not provoked: %v", err)
	case err != nil:
		t.Fatal(err)
	default:
		n := float64(comp.Counts["compaction:mm_compaction_try_to_compact_pages"])
		sel := `{comm="` + compComm + `",kind="compaction"}`
		prom.waitFor(t, `sum(memtrace_compaction_stalls_total`+sel+`)`, n)
		prom.waitFor(t, `sum(memtrace_compaction_stall_seconds_count`+sel+`)`, n)
		t.Logf("compaction by %s: %v calls (tracefs), buckets %+v", compComm, n,
			prom.query(t, `sum by (le) (memtrace_compaction_stall_seconds_bucket`+sel+`) > 0`))
	}

	for _, q := range []string{
		`memtrace_atomic_demand_peak_bytes{window="100ms",gfp="all"}`,
		`memtrace_atomic_demand_bytes_total{gfp="other"}`,
		`memtrace_zone_free_bytes{zone="Normal"}`,
		`memtrace_zone_watermark_bytes{zone="Normal",watermark="min"}`,
	} {
		waitPositive(t, prom, q)
	}
	if got := prom.query(t, `memtrace_atomic_demand_read_error`); len(got) != 1 || got[0].Value != 0 {
		t.Errorf("atomic demand read error: %+v", got)
	}
}

// waitPositive waits until q has a series above zero.
func waitPositive(t *testing.T, prom *promServer, q string) {
	t.Helper()
	for i := 0; ; i++ {
		got := prom.query(t, q)
		if len(got) > 0 && got[0].Value > 0 {
			return
		}
		if i == 120 {
			t.Fatalf("%s: nothing above zero after 30s: %+v", q, got)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
