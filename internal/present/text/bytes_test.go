package text

import (
	"math"
	"testing"
)

// TestBytes pins the three styles on the sizes the reports show (the
// hugepages, doctor and watch cases that were once three formatters) and
// on the edges: below 1 KiB, 100 units, a decimal that rounds to .0 and to
// the next hundred, and the largest uint64.
func TestBytes(t *testing.T) {
	for _, c := range []struct {
		n                     uint64
		zero, whole, fixedDec string
	}{
		{0, "0 B", "0 B", "0 B"},
		{56, "56 B", "56 B", "56 B"},
		{1023, "1023 B", "1023 B", "1023 B"},
		{1024, "1 KiB", "1 KiB", "1.0 KiB"},
		{1536, "1.5 KiB", "1.5 KiB", "1.5 KiB"},
		{4096, "4 KiB", "4 KiB", "4.0 KiB"},
		{2 << 20, "2 MiB", "2 MiB", "2.0 MiB"},
		{1090519, "1 MiB", "1.0 MiB", "1.0 MiB"}, // 1.04 MiB: doctor's "1.0 MiB" in its golden file
		{144 << 20, "144 MiB", "144 MiB", "144 MiB"},
		{100 << 20, "100 MiB", "100 MiB", "100 MiB"},
		{104816640, "100 MiB", "100.0 MiB", "100.0 MiB"}, // 99.96 MiB rounds up to 100.0
		{1100 << 20, "1.1 GiB", "1.1 GiB", "1.1 GiB"},
		{1 << 30, "1 GiB", "1 GiB", "1.0 GiB"},
		{17702060032, "16.5 GiB", "16.5 GiB", "16.5 GiB"},
		{200 << 30, "200 GiB", "200 GiB", "200 GiB"},
		{1023<<30 + 1000<<20, "1024 GiB", "1024 GiB", "1024 GiB"},
		{1 << 50, "1 PiB", "1 PiB", "1.0 PiB"},
		{math.MaxUint64, "16 EiB", "16 EiB", "16.0 EiB"},
	} {
		for _, s := range []struct {
			d    Decimals
			want string
		}{{TrimZero, c.zero}, {TrimWhole, c.whole}, {Fixed, c.fixedDec}} {
			if got := Bytes(c.n, s.d); got != s.want {
				t.Errorf("Bytes(%d, %d) = %q, want %q", c.n, s.d, got, s.want)
			}
		}
	}
}
