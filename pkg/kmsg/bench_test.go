package kmsg

import (
	"io"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/memtrace/memtrace/internal/testing/synthlog"
)

// BenchmarkMillionReports streams a synthetic log of a million failure
// reports (about 1.5 GB, generated while read) through the text reader and
// the parser, and reports the peak live heap: it stays a few MiB whatever
// the log holds (docs/benchmarks.md has the figures and the RSS of the
// real command). "distinct": no two reports group together, the worst
// case; "same": one flood of a single failure.
//
//	go test -run '^$' -bench MillionReports -benchtime 1x ./pkg/kmsg/
func BenchmarkMillionReports(b *testing.B) {
	for _, c := range []struct {
		name string
		opt  synthlog.Options
	}{
		{"distinct", synthlog.Options{Reports: 1_000_000, Distinct: true}},
		{"same", synthlog.Options{Reports: 1_000_000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			size, _ := io.Copy(io.Discard, synthlog.New(c.opt))
			b.SetBytes(size)
			sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			var peak uint64
			for b.Loop() {
				runtime.GC()
				var p Parser
				var n uint64
				feed := func(r Record) {
					p.Feed(r)
					// The live heap between collections: an upper
					// bound on what the parser holds.
					if n++; n%8192 == 0 {
						metrics.Read(sample)
						peak = max(peak, sample[0].Value.Uint64())
					}
				}
				if err := ReadText(synthlog.New(c.opt), TextOptions{}, feed); err != nil {
					b.Fatal(err)
				}
				r := p.Result()
				if r.Failures != c.opt.Reports {
					b.Fatalf("%d failures, want %d", r.Failures, c.opt.Reports)
				}
				runtime.GC()
				metrics.Read(sample)
				b.ReportMetric(float64(sample[0].Value.Uint64())/(1<<20), "retained-MiB")
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
