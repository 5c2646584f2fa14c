package doctor

import (
	"context"
	"testing"
)

// BenchmarkThisHost is `memtrace doctor` on the machine the benchmark runs
// on: the kernel log, every process, /proc and /sys, then every check.
func BenchmarkThisHost(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		in := Gather(context.Background(), Options{})
		if r := Check(in, Config{}); len(r.Findings) == 0 {
			b.Fatal("no findings")
		}
	}
}

// BenchmarkLiveGFP is naming this host's GFP flags, as doctor does once:
// the tracepoint format if tracefs is mounted, and the kernel's GFP bit
// enum read in place from its BTF.
func BenchmarkLiveGFP(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LiveGFP(""); err != nil {
			b.Fatal(err)
		}
	}
}
