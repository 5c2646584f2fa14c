package metrics

import (
	"math"
	"testing"

	"github.com/memtrace/memtrace/internal/present/promtext"
	"github.com/memtrace/memtrace/internal/present/view"
)

// The log2 µs slots become cumulative buckets in seconds: slot k is under
// 2^(k+1) µs, the last slot only in +Inf.
func TestBucketsFromLog2Slots(t *testing.T) {
	var s view.Spread
	s.Hist[0] = 1  // < 2 µs
	s.Hist[3] = 2  // [8, 16) µs
	s.Hist[20] = 4 // [1.05, 2.1) s
	s.Hist[31] = 1 // ≥ 2^31 µs
	count, cum := buckets(s)
	if count != 8 {
		t.Errorf("count %d, want 8", count)
	}
	for k, want := range map[int]uint64{0: 1, 1: 1, 2: 1, 3: 3, 19: 3, 20: 7, 30: 7} {
		if cum[k] != want {
			t.Errorf("bucket %d (le %g) = %d, want %d", k, bucketBounds[k], cum[k], want)
		}
	}
	if len(cum) != 31 || bucketBounds[0] != 2e-6 || bucketBounds[3] != 16e-6 || math.Abs(bucketBounds[30]-2147.483648) > 1e-9 {
		t.Errorf("bounds: %d buckets, %g, %g, %g", len(cum), bucketBounds[0], bucketBounds[3], bucketBounds[30])
	}
}

// A stall that moves to a longer slot between scrapes makes a bucket go
// down in the kernel: the exported bucket must not.
func TestHistogramBucketsNeverGoDown(t *testing.T) {
	desc := promtext.NewDesc("h_seconds", "h", nil, nil)
	h := &histSeries{}
	h.spread.Add(view.Tally{N: 1, TotalNs: 1000, Hist: [view.HistSlots]uint64{1}})
	first := bucketValues(t, h.metric(desc, nil))
	var moved view.Tally
	moved.TotalNs = 4e6
	moved.Hist[0] = ^uint64(0) // -1: it left slot 0
	moved.Hist[11] = 1
	h.spread.Add(moved)
	second := bucketValues(t, h.metric(desc, nil))
	if first[2e-6] != 1 || second[2e-6] != 1 || second[4.096e-3] != 1 {
		t.Errorf("buckets %v then %v", first, second)
	}
	// A new call under 2 µs: the kernel's bucket is back at 1, the
	// exported one stays at 1 until the kernel's passes it.
	h.spread.Add(view.Tally{N: 1, Hist: [view.HistSlots]uint64{1}})
	third := bucketValues(t, h.metric(desc, nil))
	if third[2e-6] != 1 || third[4.096e-3] != 2 {
		t.Errorf("after a second call: %v", third)
	}
}

func bucketValues(t *testing.T, m promtext.Metric) map[float64]uint64 {
	t.Helper()
	mfs, err := gatherer(promtext.CollectorFunc(func(ch chan<- promtext.Metric) { ch <- m })).Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathering one histogram: %d families (%v)", len(mfs), err)
	}
	out := map[float64]uint64{}
	for _, b := range mfs[0].GetMetric()[0].GetHistogram().GetBucket() {
		out[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	return out
}

// THP fallbacks are counted apart from the failures that matter.
func TestTHPFallbacksApart(t *testing.T) {
	src := newFakeSource()
	src.fail(30, "java", 9, 0x2c0cca, 40)
	k := allocKey{pid: 30, order: 9, gfp: 0x2c0cca, stack: 7}
	a := src.alloc[k]
	a.THPFallback = true
	src.alloc[k] = a
	src.fail(31, "nginx", 1, 0x820, 3)
	reg := gatherer(New(src, Options{CommLabel: true}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil && (mf.GetName() == "memtrace_thp_fallbacks_total" || mf.GetName() == "memtrace_page_alloc_failures_total") {
				comm := ""
				for _, l := range m.GetLabel() {
					if l.GetName() == "comm" {
						comm = l.GetValue()
					}
				}
				got[mf.GetName()+"/"+comm] += c.GetValue()
			}
		}
	}
	want := map[string]float64{"memtrace_thp_fallbacks_total/java": 40, "memtrace_page_alloc_failures_total/nginx": 3}
	if len(got) != len(want) || got["memtrace_thp_fallbacks_total/java"] != 40 || got["memtrace_page_alloc_failures_total/nginx"] != 3 {
		t.Errorf("counters %v, want %v", got, want)
	}
}
